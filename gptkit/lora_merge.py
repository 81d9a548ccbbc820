"""`gptkit merge`: a LoRA run's adapters folded into its base weights, written as a plain run directory.

The merged run needs neither the base run nor the adapters: config (`lora.r` = 0; a head that had its own
adapter is untied from the embedding), tokenizer and `model.safetensors`, written into a staging folder and
renamed into place, so an interrupted merge leaves nothing behind. Its logits equal the LoRA run's.
Entry point: `merge_run`.
"""

import shutil
from pathlib import Path

from gptkit.atomic import new_folder
from gptkit.checkpoint import WEIGHTS_FILE, load_model, read_run_config, save_weights, write_run_config
from gptkit.config import LoRAConfig, RunConfig
from gptkit.errors import ArgumentError, GptkitError
from gptkit.lora import merge_lora
from gptkit.paths import shown
from gptkit.tokenizer import TOKENIZER_FILE


def merge_run(run_dir, out_dir, *, weights: str = "last") -> Path:
    """Write `out_dir`, a plain run equal to the LoRA run `run_dir` with its `last` or `best` adapters."""
    from gptkit.run import WEIGHT_CHOICES

    run_dir, out = Path(run_dir), Path(out_dir)
    config = read_run_config(run_dir)
    if not config.lora.r:
        raise GptkitError(
            f"{shown(run_dir)} has no LoRA adapters to merge (`lora.r` is 0); it is a plain run already, use it as is"
        )
    if weights not in WEIGHT_CHOICES:
        raise ArgumentError("weights", f"choose one of {', '.join(WEIGHT_CHOICES)}", weights)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArgumentError(
            "out_dir", "exists and is not an empty folder; choose a new folder", shown(out), flag="--out"
        )
    model = merge_lora(load_model(run_dir, config, WEIGHT_CHOICES[weights]))
    merged = RunConfig.from_dict(config.to_dict())
    merged.model, merged.lora = model.config, LoRAConfig()
    with new_folder(out) as staging:  # a non-empty `out` was refused above
        write_run_config(staging, merged)
        save_weights(model, staging / WEIGHTS_FILE, {"merged_from": str(run_dir.resolve()), "weights": weights})
        if (run_dir / TOKENIZER_FILE).exists():
            shutil.copyfile(run_dir / TOKENIZER_FILE, staging / TOKENIZER_FILE)
    return out
