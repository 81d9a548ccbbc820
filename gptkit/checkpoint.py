"""Run directories on disk: config, weights and the resumable training state, as safetensors + JSON.

A run directory holds `config.json`, `tokenizer.json`, `model.safetensors` (latest weights, for use),
`best.safetensors` (lowest val loss so far), `checkpoint.safetensors` (weights + optimizer + RNG states +
step, in one file so it is consistent) and `metrics.jsonl`; a LoRA run saves its adapters alone and records its
base run in `base.json` (`gptkit.lora_base`). Every file is written atomically. Nothing is
pickled. Entry points: `save_checkpoint`/`load_checkpoint`, `save_weights`/`load_weights`, `read_run_config`.
"""

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gptkit.atomic import atomic_write_text, replacing_via_private_folder
from gptkit.config import GPTConfig, RunConfig
from gptkit.errors import GptkitError
from gptkit.lora import adapter_state, apply_lora, has_lora
from gptkit.lora_base import file_sha256, read_base_reference
from gptkit.memory import check_model_fits, param_count
from gptkit.paths import folder_problem, read_json, shown

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT_VERSION = 1


@dataclass
class TrainState:
    """Counters the loop needs to continue exactly where it stopped."""

    step: int = 0  # optimizer steps completed
    best_val_loss: float = float("inf")
    tokens_seen: int = 0
    scaler: dict = field(default_factory=dict)  # float16 loss-scaler state, empty otherwise
    world_size: int = 1  # processes that trained it (torchrun), and each one's grad_accum:
    grad_accum: int = 0  # resuming with another world size keeps their product (0: not recorded)
    elapsed_s: float = 0.0  # wall-clock seconds of training so far (what `train.time_budget_s` counts)
    dtype: str = ""  # what `train.dtype=auto` picked on a CPU (kept on resume); empty otherwise


def write_run_config(run_dir, config: RunConfig) -> None:
    atomic_write_text(Path(run_dir) / CONFIG_FILE, config.to_json())


def read_run_config(run_dir) -> RunConfig:
    """The RunConfig saved in `run_dir`, checked as training checks it; a clear error when it is not a run."""
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise GptkitError(f"{shown(run_dir)}: {folder_problem(run_dir)}; pass a folder written by `gptkit train --out`")
    if not path.is_file():
        raise GptkitError(f"{run_dir}: not a gptkit run (no {CONFIG_FILE}); pass a folder written by `gptkit train`")
    raw = read_json(path, what="the run directory is damaged")
    if not isinstance(raw, dict):
        raise GptkitError(f"{path}: holds a JSON {type(raw).__name__}, not an object of settings; the run is damaged")
    config = RunConfig.from_dict(raw, source=str(path))
    try:
        config.validate()
        if config.model.vocab_size <= 0:
            raise GptkitError("`model.vocab_size` must be positive in a trained run")
    except GptkitError as err:
        raise GptkitError(f"{path}: {err} (was the file edited?)") from None
    return config


FLOAT_DTYPES = ("F32", "F16", "BF16")  # safetensors' names of the dtypes weights may have


def weights_header(path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each tensor's safetensors dtype ("F32", "BOOL", ...) and shape, from the file's header alone."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise GptkitError(f"{path}: missing; the run has no saved weights yet (did training reach a checkpoint?)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            slices = {name: handle.get_slice(name) for name in handle.keys()}
            return {name: (part.get_dtype(), tuple(part.get_shape())) for name, part in slices.items()}
    except (SafetensorError, OSError) as err:
        raise GptkitError(f"{path}: not a readable safetensors file ({err})") from None


def check_weights_fit_config(path, model: GPTConfig) -> None:
    """Refuse weights that are not floating point, or whose size is not what `model` describes (checked from
    the header, before a model of that config is built: a hand-edited config must not allocate terabytes)."""
    header = weights_header(path)
    for name, (dtype, _) in header.items():
        if dtype not in FLOAT_DTYPES:
            raise GptkitError(f"{path}: tensor `{name}` is {dtype}; weights must be float32, float16 or bfloat16")
    held = sum(math.prod(shape) for _, shape in header.values())
    expected = param_count(model)
    if held != expected:
        raise GptkitError(
            f"{path}: holds {held:,} weights, but {CONFIG_FILE} describes a model of {expected:,} "
            f"(n_layer={model.n_layer}, n_embd={model.n_embd}, vocab_size={model.vocab_size}); the config does not "
            "match the weights (was it edited?)"
        )


def weights_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors by name, each shared (tied) tensor once, contiguous, ready for safetensors."""
    seen: set[int] = set()
    state = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in seen:  # e.g. lm_head.weight, the same Parameter as transformer.wte.weight
            continue
        seen.add(id(tensor))
        state[name] = tensor.detach().contiguous()
    return state


def saved_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a run saves of `model`: every tensor, or for a LoRA model (frozen base) only what it trains."""
    return adapter_state(model) if has_lora(model) else weights_state(model)


def load_weights_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy `tensors` into `model` (all its tensors, or a LoRA model's adapters), refusing missing, extra or
    mis-shaped tensors with a one-line error."""
    expected = saved_state(model)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise GptkitError(f"{source}: weights do not match the model (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():  # copy_ would turn bools or ints into weights silently
            raise GptkitError(
                f"{source}: tensor `{name}` is {str(tensor.dtype).removeprefix('torch.')}; weights must be float32, "
                "float16 or bfloat16"
            )
        if tensor.shape != expected[name].shape:
            raise GptkitError(
                f"{source}: `{name}` has shape {tuple(tensor.shape)} but the model expects "
                f"{tuple(expected[name].shape)}; the weights come from a differently sized model"
            )
    with torch.no_grad():
        for name, param in expected.items():
            param.copy_(tensors[name])


def save_weights(model: torch.nn.Module, path, metadata: dict | None = None) -> None:
    with replacing_via_private_folder(path) as tmp:
        save_file(saved_state(model), str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})


def _read_safetensors(path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise GptkitError(f"{path}: missing; the run has no saved weights yet (did training reach a checkpoint?)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise GptkitError(f"{path}: not a readable safetensors file ({err})") from None


def load_weights(model: torch.nn.Module, path, *, grow_vocab: bool = False) -> None:
    """Load `path` into `model`; with `grow_vocab`, a vocabulary smaller than the model's gains its new rows."""
    tensors = _read_safetensors(path)
    if grow_vocab:
        tensors = with_new_vocab_rows(tensors, weights_state(model))
    load_weights_state(model, tensors, str(path))


VOCAB_ROWS = ("transformer.wte.weight", "lm_head.weight")  # the token embedding and an untied output head


def with_new_vocab_rows(tensors: dict, expected: dict) -> dict:
    """`tensors` with the token embedding (and untied head) grown to the model's vocabulary: each new row (a
    token added after training, e.g. the chat template's) starts as the mean of the trained rows, a token
    the model treats as typical rather than as random noise (Hewitt 2021, "Initializing new word embeddings")."""
    grown = dict(tensors)
    for name in VOCAB_ROWS:
        if name in tensors and name in expected and tensors[name].shape[0] < expected[name].shape[0]:
            old = tensors[name]
            extra = expected[name].shape[0] - old.shape[0]
            grown[name] = torch.cat([old, old.float().mean(0, keepdim=True).to(old.dtype).expand(extra, -1)])
    return grown


def load_model(run_dir, config: RunConfig, weights_file: str = WEIGHTS_FILE) -> torch.nn.Module:
    """The run's GPT with the weights in `weights_file`, checked against the config before it is built; for a
    LoRA run, its base run's weights with the adapters in `weights_file` (not merged: see `gptkit.lora`)."""
    from gptkit.model import build_model

    if config.lora.r:
        return load_lora_model(run_dir, config, weights_file)
    path = Path(run_dir) / weights_file
    check_weights_fit_config(path, config.model)
    check_model_fits(config.model, torch.device("cpu"), str(Path(run_dir) / CONFIG_FILE))  # e.g. RoPE tables
    model = build_model(config.model)
    load_weights(model, path)
    return model


def base_reference(base_dir) -> dict:
    """What a LoRA run records of the run it adapts (`gptkit.lora_base`): where it is, its weights' sha256
    and how many vocabulary rows they have."""
    base_dir = Path(base_dir)
    config = read_run_config(base_dir)
    if config.lora.r:
        raise GptkitError(
            f"{shown(base_dir)} is itself a LoRA run; merge it first (`gptkit merge {shown(base_dir)} --out DIR`) "
            "and adapt the merged run"
        )
    weights = base_dir / WEIGHTS_FILE
    embedding = weights_header(weights).get("transformer.wte.weight")
    if embedding is None:
        raise GptkitError(f"{weights}: no `transformer.wte.weight`; the run is damaged, or not a gptkit run")
    rows = embedding[1][0]
    return {"run": str(base_dir.resolve()), "weights": WEIGHTS_FILE, "sha256": file_sha256(weights), "vocab_rows": rows}


def load_lora_model(run_dir, config: RunConfig, weights_file: str) -> torch.nn.Module:
    """The base run's model (checked against its recorded sha256) with this run's adapters and trained token
    rows from `weights_file`, not merged."""
    from gptkit.model import GPT

    reference = read_base_reference(run_dir)
    check_model_fits(config.model, torch.device("cpu"), str(Path(run_dir) / CONFIG_FILE))
    model = GPT(config.model)
    load_weights(model, Path(reference["run"]) / reference["weights"], grow_vocab=True)  # rows of added tokens
    apply_lora(model, config.lora, first_new_row=int(reference["vocab_rows"]))
    load_weights(model, Path(run_dir) / weights_file)
    return model


def _generator_states(generators: dict[str, torch.Generator], device: torch.device) -> dict[str, torch.Tensor]:
    states = {f"rng.{name}": g.get_state() for name, g in generators.items()}
    states["rng.torch"] = torch.get_rng_state()
    if device.type == "cuda":
        states["rng.cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        states["rng.mps"] = torch.mps.get_rng_state()
    return states


def save_checkpoint(
    path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    generators: dict[str, torch.Generator],
    device: torch.device,
) -> None:
    """Write everything needed to resume bit-for-bit into one safetensors file (atomically)."""
    tensors = {f"model.{k}": v for k, v in saved_state(model).items()}
    optim_state = optimizer.state_dict()
    for index, slots in optim_state["state"].items():
        for slot, value in slots.items():
            tensors[f"optim.{index}.{slot}"] = value.detach().contiguous()
    tensors.update(_generator_states(generators, device))
    info = {"format_version": FORMAT_VERSION, "state": asdict(state), "param_groups": optim_state["param_groups"]}
    with replacing_via_private_folder(path) as tmp:
        save_file(tensors, str(tmp), metadata={"gptkit": json.dumps(info)})


def load_checkpoint(
    path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    device: torch.device,
) -> TrainState:
    """Restore model, optimizer and RNG states saved by `save_checkpoint`; returns the loop counters."""
    from safetensors import safe_open

    path = Path(path)
    tensors = _read_safetensors(path)
    with safe_open(str(path), framework="pt") as handle:
        try:
            info = json.loads((handle.metadata() or {}).get("gptkit", "{}"))
        except (ValueError, RecursionError):
            info = None
    if not isinstance(info, dict) or info.get("format_version") != FORMAT_VERSION:
        raise GptkitError(f"{path}: not a gptkit checkpoint of a supported version; start a new run instead")
    missing = [key for key in ("state", "param_groups") if key not in info]
    missing += [f"rng.{name}" for name in [*generators, "torch"] if f"rng.{name}" not in tensors]
    if missing:
        raise GptkitError(
            f"{path}: damaged checkpoint, `{missing[0]}` is missing; resume from a copy or start again with "
            "overwrite=True (--overwrite)"
        )
    load_weights_state(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, str(path))
    slots: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, slot = key.split(".", 2)
            slots.setdefault(int(index), {})[slot] = value
    try:
        optimizer.load_state_dict({"state": slots, "param_groups": info["param_groups"]})
    except (ValueError, KeyError, TypeError) as error:  # group or parameter counts differ: another optimizer
        raise GptkitError(
            f"{path}: its optimizer state does not fit this run ({error}); resume with the `train.optimizer` the "
            "run was started with"
        ) from None
    try:
        for name, generator in generators.items():
            generator.set_state(tensors[f"rng.{name}"])
        torch.set_rng_state(tensors["rng.torch"])
    except (RuntimeError, TypeError) as err:
        raise GptkitError(
            f"{path}: damaged RNG state ({str(err)[:120]}); start again with overwrite=True (--overwrite)"
        ) from None
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    elif device.type == "mps" and "rng.mps" in tensors:
        torch.mps.set_rng_state(tensors["rng.mps"])
    try:
        return TrainState(**info["state"])
    except TypeError as err:
        raise GptkitError(
            f"{path}: damaged checkpoint state ({err}); start again with overwrite=True (--overwrite)"
        ) from None
