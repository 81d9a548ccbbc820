"""Hugging Face checkpoint folders on disk: reading their weights files, and replacing a folder safely.

Reads `model.safetensors`, its shards (with the index) or `pytorch_model.bin` (with `weights_only=True`,
tensors only); never the network. Writing goes through a staging folder that is renamed into place.
Entry points: `read_hf_weights`, `check_export_target`, `replace_folder`.
"""

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from gptkit.atomic import FILE_MODE, FOLDER_MODE
from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import read_json, shown


def read_hf_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint folder: model.safetensors, its shards, or pytorch_model.bin (tensors only)."""
    index = folder / "model.safetensors.index.json"
    try:
        if (folder / "model.safetensors").is_file():
            return load_file(str(folder / "model.safetensors"))
        if index.is_file():
            shards = sorted(set(read_json(index, what="a damaged shard index")["weight_map"].values()))
            tensors = {}
            for shard in shards:
                if Path(shard).name != shard:
                    raise GptkitError(f"{index}: shard {shard!r} is not a file in this folder")
                tensors.update(load_file(str(folder / shard)))
            return tensors
    except (SafetensorError, OSError, KeyError, TypeError, AttributeError, json.JSONDecodeError) as err:
        raise GptkitError(f"{folder}: unreadable safetensors checkpoint ({type(err).__name__}: {err})") from None
    binary = folder / "pytorch_model.bin"
    if binary.is_file():
        try:
            state = torch.load(binary, map_location="cpu", weights_only=True)  # never unpickle arbitrary objects
        except Exception as err:  # noqa: BLE001 - any failure here means "not plain tensors"
            raise GptkitError(
                f"{binary}: not a plain-tensor checkpoint ({type(err).__name__}); refusing to load it"
            ) from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise GptkitError(f"{binary}: does not hold a dict of tensors; refusing to load it")
        return state
    raise GptkitError(f"{folder}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin")


def out_dir_error(out: Path, problem: str) -> ArgumentError:
    """A problem with the folder to write: the `out_dir` argument, `--out` on the command line."""
    return ArgumentError("out_dir", problem, shown(out), flag="--out")


def check_export_target(out: Path, run_dir: Path) -> None:
    """`out_dir` may be new, empty, or an earlier export (a model or PEFT adapters); never the run itself or a
    folder holding it."""
    if out.resolve() == run_dir.resolve() or out.resolve() in run_dir.resolve().parents:
        raise out_dir_error(out, f"would replace the run {shown(run_dir)} itself; choose another folder")
    if out.exists() and not out.is_dir():
        raise out_dir_error(out, "is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()):
        config, adapters = out / "config.json", out / "adapter_config.json"
        earlier = config.is_file() and "model_type" in read_json(config, what="not an earlier export")
        earlier = earlier or (adapters.is_file() and "peft_type" in read_json(adapters, what="not an earlier export"))
        if not earlier:
            raise out_dir_error(out, "not empty and not an earlier export; choose a new folder")


def replace_folder(staging: Path, out: Path) -> None:
    """Put `staging` at `out`; an earlier `out` is moved aside first and removed only afterwards."""
    os.chmod(staging, FOLDER_MODE)  # mkdtemp's folder and safetensors' files are the owner's alone
    for path in staging.iterdir():
        os.chmod(path, FILE_MODE)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
