"""Imports point downwards (STYLE.md habit 6): a module never imports one from a higher layer."""

import ast
from pathlib import Path

import gptkit

PACKAGE = Path(gptkit.__file__).parent
LAYERS = [
    {"errors", "atomic", "config", "presets", "runtime"},
    {"tokenizer", "model"},
    {"data", "checkpoint", "generate"},
    {"train", "run"},
    {"cli", "__init__", "__main__"},
]


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_no_module_imports_upwards():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(relative.parts)
        own = layer_of(name)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gptkit."):
                target = node.module.removeprefix("gptkit.")
                if layer_of(target) > own:
                    upward.append(f"{name} -> {target}")
    assert not upward
