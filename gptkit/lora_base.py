"""The base run of a LoRA run, recorded in its `base.json`: the base's path, the sha256 of its weights and its
vocabulary rows; checked whenever the run is loaded or resumed.

A LoRA run directory holds the adapters alone (`model.safetensors`, `best.safetensors` and the checkpoint
hold only `lora_A`/`lora_B` and trainable token rows), so it is useless without the exact weights it was
trained on: a changed base file is refused rather than silently given adapters made for other weights.
Building the reference and the model from it is `gptkit.checkpoint`'s (`base_reference`, `load_lora_model`).
Entry points: `write_base_reference`, `read_base_reference`, `file_sha256`.
"""

import hashlib
from pathlib import Path

from gptkit.atomic import atomic_write_text
from gptkit.errors import GptkitError
from gptkit.paths import read_json

BASE_FILE = "base.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_base_reference(run_dir: Path, reference: dict) -> None:
    import json

    atomic_write_text(Path(run_dir) / BASE_FILE, json.dumps(reference, indent=1))


def read_base_reference(run_dir: Path, *, check: bool = True) -> dict:
    """The run's `base.json`; with `check`, refuse a base whose weights are gone or changed since training."""
    path = Path(run_dir) / BASE_FILE
    if not path.is_file():
        raise GptkitError(f"{path}: missing; a LoRA run (`lora.r` > 0) needs the record of its base run")
    reference = read_json(path, what="the LoRA run is damaged")
    keys = ("run", "weights", "sha256", "vocab_rows")
    if not isinstance(reference, dict) or any(key not in reference for key in keys):
        raise GptkitError(f"{path}: damaged, needs {', '.join(keys)}; train the LoRA run again")
    weights = Path(reference["run"]) / reference["weights"]
    if check:
        if not weights.is_file():
            raise GptkitError(
                f"{path}: the base weights {weights} are gone; put the base run back there (or edit `run` in "
                f"{BASE_FILE} to where it is now)"
            )
        if file_sha256(weights) != reference["sha256"]:
            raise GptkitError(
                f"{path}: the base weights {weights} changed since the adapters were trained (sha256 differs); "
                "restore them, or train the adapters again on the new base"
            )
    return reference
