"""The training loop: `train(config, out_dir)` trains a GPT on a prepared dataset and writes a run directory.

Order of one step: set the LR for this step, run `grad_accum` micro-batches (forward, backward), clip,
AdamW step. At step 0, every `eval_interval` steps and at the end it estimates train/val loss on fixed
batches, keeps the best-by-val weights and writes a checkpoint that `resume=True` continues bit-for-bit.
It does not prepare data, sample text or launch processes; those live in their own modules.
"""

import math
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from gptkit.checkpoint import (
    BEST_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    TrainState,
    load_checkpoint,
    load_weights,
    read_run_config,
    save_checkpoint,
    save_weights,
    write_run_config,
)
from gptkit.config import RunConfig
from gptkit.data.dataset import TokenDataset
from gptkit.errors import GptkitError
from gptkit.model import GPT
from gptkit.runtime import autocast_for, measure_peak_flops, pick_device, resolve_dtype
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.train.metrics import METRICS_FILE, MetricsLog, Throughput
from gptkit.train.optim import build_optimizer, lr_at

RUN_FILES = (CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, BEST_FILE, CHECKPOINT_FILE, METRICS_FILE)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    train_loss: float
    val_loss: float
    best_val_loss: float


def _echo(line: str) -> None:
    tqdm.write(line, file=sys.stdout)


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber an existing run unless asked; `overwrite` removes only gptkit's own files."""
    has_run = (run_dir / CONFIG_FILE).exists()
    if resume:
        if not (run_dir / CHECKPOINT_FILE).exists():
            raise GptkitError(
                f"--resume {run_dir}: no checkpoint to resume from (one is written every `train.eval_interval` "
                "steps); start the run again with --overwrite"
            )
        return
    if has_run and not overwrite:
        raise GptkitError(
            f"--out {run_dir}: already holds a run; pass --resume to continue it, --overwrite to start over, "
            "or choose another --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)


def open_data(config: RunConfig) -> TokenDataset:
    if not config.data:
        raise GptkitError("train: no dataset given; pass --data DIR (a folder written by `gptkit prepare`)")
    if len(config.data) > 1:
        raise GptkitError("train: several [[data]] entries (mixtures) are not supported yet; give one dataset")
    dataset = TokenDataset(config.data[0].path)
    if config.model.vocab_size == 0:
        config.model.vocab_size = dataset.vocab_size
    elif config.model.vocab_size < dataset.vocab_size:
        raise GptkitError(
            f"`model.vocab_size`={config.model.vocab_size} is smaller than the data's tokenizer "
            f"({dataset.vocab_size}); leave it at 0 to take it from the data"
        )
    dataset.check_block_size("train", config.model.block_size)
    return dataset


def init_from_run(model: GPT, init_dir: Path, data_dir: Path) -> None:
    """Start from another run's weights; its tokenizer must be the one the data was prepared with."""
    read_run_config(init_dir)  # clear error when init_dir is not a run
    if load_tokenizer(init_dir).to_dict() != load_tokenizer(data_dir).to_dict():
        raise GptkitError(
            f"--init-from {init_dir}: its tokenizer differs from the one {data_dir} was prepared with; "
            f"prepare the data with `--tokenizer {init_dir / TOKENIZER_FILE}`"
        )
    load_weights(model, init_dir / WEIGHTS_FILE)


@torch.no_grad()
def estimate_loss(model, dataset: TokenDataset, config: RunConfig, device, dtype) -> dict[str, float]:
    """Mean loss over `eval_iters` batches per split, drawn from a fixed seed so evals are comparable."""
    cfg, block = config.train, config.model.block_size
    model.eval()
    losses = {}
    for split in ("train", "val"):
        if dataset.num_tokens(split) <= block:
            continue
        generator = torch.Generator().manual_seed(cfg.seed + 1)
        total = torch.zeros((), device=device)
        for _ in range(cfg.eval_iters):
            x, y = dataset.get_batch(split, cfg.batch_size, block, generator, device)
            with autocast_for(device, dtype):
                total += model(x, y)[1]
        losses[split] = (total / cfg.eval_iters).item()
    model.train()
    return losses


def train_step(runner, model, optimizer, scaler, next_batch, cfg, lr: float, device, dtype) -> torch.Tensor:
    """One optimizer step over `grad_accum` micro-batches; returns the mean loss as a device tensor (no sync)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss_sum = torch.zeros((), device=device)
    for _ in range(cfg.grad_accum):
        x, y = next_batch()
        with autocast_for(device, dtype):
            _, loss = runner(x, y)
        scaler.scale(loss / cfg.grad_accum).backward()
        loss_sum += loss.detach()
    if cfg.grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum / cfg.grad_accum


def describe_start(config: RunConfig, model: GPT, dataset: TokenDataset, device, dtype, peak_flops: float) -> str:
    m, t = config.model, config.train
    tokens_per_step = t.grad_accum * t.batch_size * m.block_size
    total = tokens_per_step * t.max_iters
    epochs = total / max(dataset.num_tokens("train"), 1)
    return "\n".join(
        [
            "model: " + " ".join(f"{k}={v}" for k, v in vars(m).items()),
            "train: " + " ".join(f"{k}={v}" for k, v in vars(t).items()),
            f"data: {dataset.path} ({dataset.num_tokens('train'):,} train / {dataset.num_tokens('val'):,} val tokens,"
            f" vocab {dataset.vocab_size})",
            f"parameters: {model.num_params() / 1e6:.2f}M | device {device} | dtype {str(dtype).removeprefix('torch.')}"
            f" | peak {peak_flops / 1e9:.0f} GFLOP/s",
            f"tokens/step: {tokens_per_step:,} (grad_accum {t.grad_accum} x batch {t.batch_size} x block "
            f"{m.block_size}); {t.max_iters:,} steps = {total / 1e6:.2f}M tokens = {epochs:.2f} epochs",
        ]
    )


def train(
    config: RunConfig,
    out_dir,
    *,
    resume: bool = False,
    overwrite: bool = False,
    init_from=None,
    echo: Callable[[str], None] = _echo,
    progress: bool | None = None,
) -> TrainResult:
    """Train a model as `config` says and write the run directory `out_dir`.

    Args:
        config: the resolved run configuration (see `gptkit.config.resolve_config`).
        out_dir: the run directory to create (or continue, with `resume=True`).
        resume: continue from `out_dir/checkpoint.safetensors`; losses match an uninterrupted run.
        overwrite: replace an existing run in `out_dir`.
        init_from: a run directory whose weights initialise the model (fine-tuning).
        echo: where log lines go.
        progress: show a tqdm bar; None = only when stderr is a terminal.
    """
    run_dir = Path(out_dir)
    prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    cfg = config.train
    device = pick_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    torch.manual_seed(cfg.seed)
    dataset = open_data(config)
    config.validate()

    model = GPT(config.model).to(device)
    if init_from is not None:
        init_from_run(model, Path(init_from), dataset.path)
    optimizer = build_optimizer(model, cfg, device)
    generators = {"train": torch.Generator().manual_seed(cfg.seed)}
    metrics = MetricsLog(run_dir)
    state = TrainState()
    if resume:
        state = load_checkpoint(run_dir / CHECKPOINT_FILE, model, optimizer, generators, device)
        metrics.truncate_after(state.step)
        echo(f"resuming {run_dir} at step {state.step}")
    else:
        write_run_config(run_dir, config)
        shutil.copyfile(dataset.path / TOKENIZER_FILE, run_dir / TOKENIZER_FILE)
    runner = torch.compile(model) if cfg.compile else model
    scaler = torch.amp.GradScaler(device.type, enabled=(dtype == torch.float16))

    peak = cfg.peak_flops or measure_peak_flops(device, dtype if dtype != torch.float32 else torch.float32)
    echo(describe_start(config, model, dataset, device, dtype, peak))
    tokens_per_step = cfg.grad_accum * cfg.batch_size * config.model.block_size
    speed = Throughput(tokens_per_step, model.flops_per_token(), peak)
    bar = tqdm(
        total=cfg.max_iters,
        initial=state.step,
        disable=(not progress) if progress is not None else None,
        unit="step",
        dynamic_ncols=True,
    )
    losses: dict[str, float] = {}
    train_loss = math.nan
    just_resumed = resume

    def evaluate_and_checkpoint() -> None:
        nonlocal losses
        with speed.paused():
            losses = estimate_loss(runner, dataset, config, device, dtype)
            record = {"step": state.step, **{f"{k}_loss": v for k, v in losses.items()}}
            is_best = "val" in losses and losses["val"] < state.best_val_loss
            if is_best:
                state.best_val_loss = losses["val"]
            echo(
                f"eval step {state.step}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in losses.items())
                + (" (best)" if is_best else "")
            )
            if state.step > 0:
                save_weights(model, run_dir / WEIGHTS_FILE, {"step": state.step})
                if is_best:
                    save_weights(model, run_dir / BEST_FILE, {"step": state.step, "val_loss": losses["val"]})
                save_checkpoint(run_dir / CHECKPOINT_FILE, model, optimizer, state, generators, device)
            metrics.append(record)

    def next_batch():
        return dataset.get_batch("train", cfg.batch_size, config.model.block_size, generators["train"], device)

    model.train()
    while True:
        step = state.step
        at_eval = step % cfg.eval_interval == 0 or step == cfg.max_iters
        if at_eval and not just_resumed:
            evaluate_and_checkpoint()
        just_resumed = False
        if step >= cfg.max_iters:
            break

        lr = lr_at(step, cfg)
        loss = train_step(runner, model, optimizer, scaler, next_batch, cfg, lr, device, dtype)
        state.step += 1
        state.tokens_seen += tokens_per_step
        speed.steps += 1
        bar.update(1)

        if step % cfg.log_interval == 0 or state.step == cfg.max_iters:
            train_loss = loss.item()  # the only host sync outside evals
            if not math.isfinite(train_loss):
                raise GptkitError(f"train: the loss became {train_loss} at step {step}; lower `train.lr` and retry")
            rates = speed.measure()
            metrics.append({"step": step, "train_loss": train_loss, "lr": lr, "tokens": state.tokens_seen, **rates})
            bar.set_postfix(loss=f"{train_loss:.4f}")
            echo(
                f"step {step:>6}/{cfg.max_iters} | loss {train_loss:.4f} | lr {lr:.2e} | "
                f"{rates['tokens_per_s'] / 1e3:.1f}k tok/s | {rates['ms_per_step']:.1f} ms/step | "
                f"MFU {100 * rates['mfu']:.1f}%"
            )
    bar.close()
    return TrainResult(run_dir, state.step, train_loss, losses.get("val", math.nan), state.best_val_loss)
