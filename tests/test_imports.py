"""Imports point downwards (STYLE.md habit 6): a module never imports one from a higher layer, nor one of its
own layer unless that pair is listed."""

import ast
from pathlib import Path

import gptkit

PACKAGE = Path(gptkit.__file__).parent
LAYERS = [
    {"errors"},
    {"atomic", "paths", "presets", "dropout", "linear_loss", "runtime", "quantize"},
    {"config", "sampling", "sources", "columnar", "copying"},
    {"tokenizer", "model", "bigram"},
    {"memory", "chat", "lora", "lora_base", "decode"},
    {"data", "checkpoint", "generate", "budget"},
    {"evaluate"},
    {"objectives"},
    {"train", "run", "hf", "gguf_export"},
    {"experiments", "viz", "serve", "lora_merge", "copy_eval"},
    {"cli", "__init__", "__main__"},
]
# Imports between two rooms of one layer, each allowed on purpose (anything else is a cycle waiting to happen).
SIBLING_IMPORTS = {
    ("hf", "run"),
    ("gguf_export", "run"),
    ("sources", "columnar"),
    ("model", "bigram"),
    ("memory", "lora"),
    ("__main__", "cli"),
}


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def imported_modules(path: Path) -> list[str]:
    """gptkit modules imported by `path`, in any of the forms `import gptkit.x`, `from gptkit.x import y`,
    `from gptkit import x` (at any depth: imports inside functions count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name.removeprefix("gptkit.") for a in node.names if a.name.startswith("gptkit.")]
        elif isinstance(node, ast.ImportFrom) and node.module == "gptkit":
            found += [a.name for a in node.names if a.name not in ("GptkitError", "__version__")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gptkit."):
            found.append(node.module.removeprefix("gptkit."))
    return found


def test_the_checker_sees_every_import_form(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import gptkit.cli\nfrom gptkit import run\ndef f():\n    from gptkit.train.loop import train\n")
    assert imported_modules(probe) == ["cli", "run", "train.loop"]


def test_no_module_imports_upwards_or_sideways_unless_listed():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(relative.parts)
        own, room = layer_of(name), name.split(".")[0]
        for target in imported_modules(path):
            other = target.split(".")[0]
            if layer_of(target) > own:
                wrong.append(f"{name} -> {target} (upwards)")
            elif layer_of(target) == own and other != room and (room, other) not in SIBLING_IMPORTS:
                wrong.append(f"{name} -> {target} (a sibling not in SIBLING_IMPORTS)")
    assert not wrong
