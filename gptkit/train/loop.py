"""The training loop: `train(config, out_dir)` trains a GPT on a prepared dataset and writes a run directory.

Order of one step: set the LR for this step, run `grad_accum` micro-batches (forward, backward), clip,
AdamW step. At step 0, every `eval_interval` steps and at the end it estimates train/val loss on fixed
batches, keeps the best-by-val weights and writes a checkpoint that `resume=True` continues bit-for-bit
(except under `train.time_budget_s`, whose LR and stop follow the wall clock).
Under `torchrun` every process runs this same loop on its own device, wrapped in DistributedDataParallel:
all ranks draw the step's micro-batches from one shared generator and each reads its own slice, so a run on
W processes with `grad_accum` A takes the same steps as one process with A*W (and can resume with another
world size that keeps A*W). Rank 0 alone logs, evaluates and writes files; the others wait at a barrier.
It does not prepare data, sample text or launch processes; those live in their own modules.
"""

import contextlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gptkit.atomic import remove_stale_temp_files
from gptkit.budget import TokenBudget, data_shares, format_size
from gptkit.checkpoint import (
    BEST_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    TrainState,
    base_reference,
    load_checkpoint,
    load_weights,
    read_run_config,
    save_checkpoint,
    save_weights,
    write_run_config,
)
from gptkit.config import RunConfig, TrainConfig
from gptkit.errors import ArgumentError, GptkitError
from gptkit.lora import adapted_targets, apply_lora
from gptkit.lora_base import BASE_FILE, read_base_reference, write_base_reference
from gptkit.memory import check_training_fits
from gptkit.model import GPT, build_model
from gptkit.objectives import objective_for
from gptkit.paths import check_output_folder, shown
from gptkit.runtime import autocast_for, compile_blocker, measure_peak_flops, resolve_dtype
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer, with_specials
from gptkit.train.data import TrainingData, estimate_loss
from gptkit.train.distributed import World, distributed
from gptkit.train.metrics import METRICS_FILE, MetricsLog, Throughput
from gptkit.train.optim import apply_optimizer_settings, build_optimizer, lr_at, set_lr
from gptkit.train.precision import choose_cpu_dtype
from gptkit.train.tensorboard import TENSORBOARD_DIR, TensorBoardLog, summary_writer_class
from gptkit.train.timing import Cadence, ProgressBar, RunClock

RUN_FILES = (CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, BEST_FILE, CHECKPOINT_FILE, METRICS_FILE, BASE_FILE)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    rank: int = 0  # which process of a torchrun launch returned this (only rank 0 should report it)


def _echo(line: str) -> None:
    tqdm.write(line, file=sys.stdout)


def run_dir_error(run_dir: Path, problem: str) -> ArgumentError:
    """A problem with the run directory: the `out_dir` argument, `--out` on the command line."""
    return ArgumentError("out_dir", problem, shown(run_dir), flag="--out")


def check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber an existing run unless asked, and to resume a run that has no checkpoint."""
    check_output_folder(run_dir)
    if resume:
        if not (run_dir / CHECKPOINT_FILE).exists():
            raise run_dir_error(
                run_dir,
                "no checkpoint to resume from (one is written every `train.eval_interval` steps); start the run "
                "again with overwrite=True (--overwrite)",
            )
    elif (run_dir / CONFIG_FILE).exists() and not overwrite:
        raise run_dir_error(
            run_dir,
            "already holds a run; resume=True (--resume) to continue it, overwrite=True (--overwrite) to start "
            "over, or choose another folder",
        )


def clear_run_dir(run_dir: Path) -> None:
    """Create `run_dir`, removing only gptkit's own files from an earlier run (never anything else)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for events in (run_dir / TENSORBOARD_DIR).glob("events.out.tfevents.*"):
        events.unlink()
    remove_stale_run_temp_files(run_dir)


def remove_stale_run_temp_files(run_dir: Path) -> None:
    """Temp files of writes that a killed process never finished."""
    remove_stale_temp_files(run_dir, RUN_FILES)


def start_warnings(config: RunConfig, has_val: bool) -> list[str]:
    """Settings that are legal but probably not what the user meant."""
    t, warnings = config.train, []
    if not has_val:
        warnings.append(
            f"the data has no validation split longer than block_size={config.model.block_size}; "
            "val loss is not measured and no best.safetensors is kept"
        )
    if t.warmup_iters >= t.max_iters:
        warnings.append(
            f"`train.warmup_iters`={t.warmup_iters} >= `train.max_iters`={t.max_iters}: the LR never reaches "
            "`train.lr`; lower warmup_iters"
        )
    return warnings


def check_init_tokenizer(init_dir: Path, data_dir: Path, objective) -> int:
    """The run we start from must have the tokenizer the run trains with, or one that tokenizer extends by
    special tokens after its ids (the chat template's); returns the vocabulary size the run trains with."""
    read_run_config(init_dir)  # clear error when init_dir is not a run
    if not (init_dir / TOKENIZER_FILE).exists():
        raise ArgumentError(
            "init_from",
            "the run has no tokenizer (its weights were imported alone); import it again with one "
            "(import_hf(..., tokenizer=PATH), `gptkit import ... --tokenizer PATH`)",
            shown(init_dir),
        )
    base, ours = load_tokenizer(init_dir), objective.training_tokenizer(load_tokenizer(data_dir))
    added = [name for name in ours.specials if name not in base.specials]
    if with_specials(base, added).to_dict() != ours.to_dict():
        raise ArgumentError(
            "init_from",
            f"its tokenizer differs from the one {shown(data_dir)} was prepared with; prepare the data with it "
            f"(`gptkit prepare ... --tokenizer {shown(init_dir / TOKENIZER_FILE)}`)",
            shown(init_dir),
        )
    return ours.vocab_size


@dataclass
class StepParts:
    """What every optimizer step works with, built once for a training session."""

    runner: Callable  # the model as training calls it (compiled and/or wrapped in DDP)
    model: torch.nn.Module  # the plain model, whose gradients are clipped
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loss: Callable  # the objective's: loss(runner, batch) -> scalar tensor
    device: torch.device
    dtype: torch.dtype
    ddp: torch.nn.parallel.DistributedDataParallel | None = None  # under torchrun
    learned: Callable | None = None  # the objective's count of a batch's learned tokens; None: every token is
    learned_total: torch.Tensor | None = None  # that count since the last log step, on the device (no sync)

    def take_learned(self) -> torch.Tensor:
        """The learned tokens counted since the last call (a device tensor), and start counting again."""
        total = self.learned_total if self.learned_total is not None else torch.zeros((), device=self.device)
        self.learned_total = None
        return total


def train_step(parts: StepParts, next_batch, cfg: TrainConfig, lr: float, seeds=None) -> torch.Tensor:
    """One optimizer step over `grad_accum` micro-batches; returns the mean loss as a device tensor (no sync).

    Under DDP gradients are all-reduced only in the last micro-step's backward; the earlier ones accumulate
    locally under `no_sync`. `seeds` (one per micro-batch) seed the global RNG before each forward (dropout)."""
    optimizer, scaler, ddp = parts.optimizer, parts.scaler, parts.ddp
    set_lr(optimizer, lr)
    loss_sum = torch.zeros((), device=parts.device)
    for micro in range(cfg.grad_accum):
        batch = next_batch()
        if parts.learned is not None:  # e.g. the assistant's tokens of chat rows, for tokens/s
            count = parts.learned(batch)
            parts.learned_total = count if parts.learned_total is None else parts.learned_total + count
        if seeds is not None:
            torch.manual_seed(seeds[micro])
        last = micro == cfg.grad_accum - 1
        with ddp.no_sync() if ddp is not None and not last else contextlib.nullcontext():
            with autocast_for(parts.device, parts.dtype):
                loss = parts.loss(parts.runner, batch)
            scaler.scale(loss / cfg.grad_accum).backward()
        loss_sum += loss.detach()
    if cfg.grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(parts.model.parameters(), cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum / cfg.grad_accum


def describe_start(
    config: RunConfig,
    model: GPT,
    data: TrainingData,
    world: World,
    dtype,
    peak_flops: float,
    dtype_note=None,
    fine_tune: bool = False,
) -> str:
    m, t = config.model, config.train
    tokens_per_step = t.grad_accum * t.batch_size * m.block_size * world.size
    processes = f" x {world.size} processes" if world.is_distributed else ""
    where = f"{world.size} x {world.device.type}" if world.is_distributed else str(world.device)
    total = tokens_per_step * t.max_iters
    shares = data_shares(config, tokens_of=lambda source: data.datasets[source.path].num_tokens("train"))
    budget = TokenBudget.of(m, None if t.time_budget_s else total, shares=shares)
    warning = budget.warning(fine_tune=fine_tune)
    return "\n".join(
        [
            "model: " + " ".join(f"{k}={v}" for k, v in vars(m).items()),
            "train: " + " ".join(f"{k}={v}" for k, v in vars(t).items()),
            *data.objective.describe(),
            *data.describe(),
            f"parameters: {format_size(model.num_params())} | device {where} | "
            f"dtype {str(dtype).removeprefix('torch.')}"
            + (f" ({dtype_note})" if dtype_note else "")
            + f" | peak {peak_flops / 1e9:.0f} GFLOP/s",
            f"tokens/step: {tokens_per_step:,} (grad_accum {t.grad_accum} x batch {t.batch_size} x block "
            f"{m.block_size}{processes}); "
            + (
                f"as many steps as fit in {t.time_budget_s:g} s (train.time_budget_s)"
                if t.time_budget_s
                else f"{t.max_iters:,} steps = {total / 1e6:.2f}M tokens"
            ),
            budget.line(),
            *([warning] if warning else []),
        ]
    )


def check_same_adapters(saved: RunConfig, config: RunConfig) -> None:
    """A resumed run keeps its adapters: their rank, targets and scale (or their absence) cannot change."""

    def adapters(c: RunConfig):
        return (c.lora.r, sorted(c.lora.target_list()), c.lora.alpha) if c.lora.r else None

    if adapters(saved) != adapters(config):
        had = f"`lora.r`={saved.lora.r} on {saved.lora.targets}, alpha {saved.lora.alpha:g}" if saved.lora.r else "none"
        raise ArgumentError(
            "resume",
            f"the run's LoRA adapters ({had}) cannot change on resume; start a new run for other ones",
        )


def describe_lora(config: RunConfig, model: GPT, base: dict) -> str:
    """The start-up line of a LoRA run: its adapters, what trains, and the base it adapts."""
    lora = config.lora
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    rows = config.model.vocab_size - base["vocab_rows"]
    added = f" and {rows} added token row(s)" if rows > 0 else ""
    targets = ",".join(adapted_targets(model))
    return (
        f"lora: r={lora.r} alpha={lora.alpha:g} (scale {lora.alpha / lora.r:g}) dropout={lora.dropout:g} on "
        f"{targets}{added}: {trainable:,} trainable parameters ({100 * trainable / total:.2f}% "
        f"of {total:,}); base {shown(base['run'])} (weights sha256 {base['sha256'][:12]}), frozen"
    )


def check_world_size(state: TrainState, world: World, cfg: TrainConfig) -> tuple[int, str | None]:
    """On resume with another number of processes, keep the global batch by recomputing `grad_accum`.

    Returns the `grad_accum` to train with and a line saying what changed (None when nothing did); refuses a
    world size that cannot keep it. A `grad_accum` set anew (differing from the checkpoint's) is kept as given.
    `cfg` is only read."""
    recorded = state.grad_accum or cfg.grad_accum  # checkpoints before torchrun support: one process
    if state.world_size == world.size:
        return cfg.grad_accum, None
    if cfg.grad_accum != recorded:
        return cfg.grad_accum, (
            f"the run used {state.world_size} process(es) x grad_accum {recorded}, now {world.size} x "
            f"{cfg.grad_accum} as set: the global batch changes"
        )
    micro_batches = recorded * state.world_size  # per optimizer step, over all ranks
    if micro_batches % world.size:
        raise ArgumentError(
            "resume",
            f"the run used {state.world_size} process(es) x grad_accum {recorded} = {micro_batches} micro-batches "
            f"per step, which {world.size} processes cannot split evenly; resume with a number of processes that "
            f"divides {micro_batches} (or set `train.grad_accum` to change the global batch)",
        )
    grad_accum = micro_batches // world.size
    return grad_accum, (
        f"the run used {state.world_size} process(es), now {world.size}: grad_accum {recorded} -> "
        f"{grad_accum} keeps {micro_batches} micro-batches per step"
    )


def micro_batch_seed(seed: int, step: int, micro_batch: int) -> int:
    """The RNG seed for one micro-batch of one step, numbered over all ranks (rank * grad_accum + i).

    Dropout masks then depend only on which micro-batch it is: the same under any number of processes,
    and after a resume, with no RNG state to save."""
    words = np.random.SeedSequence([seed, step, micro_batch]).generate_state(2)  # two well-mixed uint32
    return int(words[0]) << 31 | int(words[1]) >> 1  # 63 bits: torch.manual_seed takes signed 64-bit


def processes_sharing_memory(world: World) -> int:
    """How many ranks of this launch share this machine's memory: all local ranks on a CPU, one on a GPU."""
    if world.device.type != "cpu" or not world.is_distributed:
        return 1
    return world.local_size


class Trainer:
    """One training session: built from a config and a run directory, then `run()` to the last step.

    The config becomes the trainer's own and is filled in as the run goes (`model.vocab_size` from the data,
    `train.grad_accum` on a resume with another number of processes): `train` hands it a copy."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        *,
        resume,
        overwrite,
        init_from,
        echo,
        world: World,
        check_memory: bool = True,
    ):
        self.config, self.cfg, self.run_dir, self.world = config, config.train, run_dir, world
        self.check_memory = check_memory
        self.echo = echo if world.is_main else (lambda line: None)
        # Filled by load(), on every rank:
        self.device: torch.device | None = None
        self.dtype: torch.dtype | None = None
        self.data: TrainingData | None = None
        self.has_val = False  # whether the data has a validation split to evaluate
        self.model: GPT | None = None  # the plain model (not compiled, not wrapped in DDP)
        self.optimizer: torch.optim.Optimizer | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.generators: dict[str, torch.Generator] = {}  # the batch samplers' RNGs, saved in checkpoints
        self.metrics: MetricsLog | None = None
        self.state: TrainState | None = None  # the counters a checkpoint saves
        self.base: dict | None = None  # a LoRA run's base run (gptkit.lora_base)
        self.fine_tune = init_from is not None or bool(config.lora.r)  # for the token budget's advice
        notes, error = [], None
        try:  # every rank checks and loads; a failure on any one of them stops all of them (world.agree)
            notes = self.load(resume=resume, overwrite=overwrite, init_from=init_from)
        except Exception as err:  # noqa: BLE001 - handed to world.agree, which raises it again
            error = err
        world.agree(error)  # also the barrier: every rank has read the run directory before rank 0 changes it
        dtype_note = self.pick_cpu_dtype() if self.cfg.dtype == "auto" and self.device.type == "cpu" else None
        if world.is_main:
            self.prepare_run_dir(resume)
        self.tensorboard: TensorBoardLog | None = None
        if config.log.tensorboard and world.is_main:
            self.tensorboard = TensorBoardLog(run_dir, self.state.step if resume else None)
        compiled = self.cfg.compile
        if compiled:  # every rank compiles, or none does (a compiled DDP wrapper on some ranks only would hang)
            blocker = compile_blocker(self.device)
            compiled = self.world.all(blocker is None)
            if not compiled:
                notes.append(f"compile: off, {blocker or 'another process has no C++ compiler'}; training without it")
        ddp = None
        runner = self.evaluator = torch.compile(self.model) if compiled else self.model
        if world.is_distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # RoPE tables are the only buffers and are the same everywhere: no need to broadcast them.
            ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids, broadcast_buffers=False)
            # Compiling the DDP wrapper (not wrapping the compiled model) lets the compiler split the graph at
            # gradient buckets, so all-reduces overlap the backward pass.
            runner = torch.compile(ddp) if compiled else ddp
            self.evaluator = self.model  # rank 0 alone, outside DDP; not compiled twice (evals are short)
        loss = self.data.objective.loss
        self.parts = StepParts(runner, self.model, self.optimizer, self.scaler, loss, self.device, self.dtype, ddp)
        self.parts.learned = self.data.objective.learned_tokens
        # Measured on every rank at once (so it sees the contention the training will see), then averaged.
        peak = (
            self.cfg.peak_flops
            or world.mean(torch.tensor(measure_peak_flops(self.device, self.dtype), device=self.device)).item()
        )
        self.tokens_per_step = self.cfg.grad_accum * self.cfg.batch_size * config.model.block_size * world.size
        flops = self.model.flops_per_token()
        if config.lora.r:  # frozen weights need no weight gradients: 4 of the 6 FLOPs per parameter and token
            flops -= 2 * (self.model.num_params() - sum(p.numel() for p in self.model.parameters() if p.requires_grad))
        self.speed = Throughput(self.tokens_per_step, flops, peak * world.size)
        self.last_rates = {"ms_per_step": 0.0, "tokens_per_s": 0.0, "mfu": 0.0}  # of the last log, for eval records
        self.losses: dict[str, float] = {}  # of the last eval
        self.train_loss = math.nan  # of the last log step
        self.echo(describe_start(config, self.model, self.data, world, self.dtype, peak, dtype_note, self.fine_tune))
        if config.lora.r:
            self.echo(describe_lora(config, self.model, self.base))
        for warning in start_warnings(config, self.has_val):
            self.echo(f"warning: {warning}")
        if resume:
            self.echo(f"resuming {run_dir} at step {self.state.step}")
        for note in filter(None, notes):
            self.echo(note)

    def load(self, *, resume: bool, overwrite: bool, init_from) -> list[str]:
        """Check the inputs and build model, optimizer and data (restored from the checkpoint on resume);
        touches no file. Returns lines to show once the run starts."""
        config, run_dir, world = self.config, self.run_dir, self.world
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if config.log.tensorboard:
            summary_writer_class()
        self.device = world.device
        self.dtype = resolve_dtype(self.cfg.dtype, self.device)
        config.validate()
        if resume:
            check_same_adapters(read_run_config(run_dir), config)
        objective = objective_for(config)
        objective.check()
        grow_vocab = False
        if init_from is not None and not config.lora.r and read_run_config(Path(init_from)).lora.r:
            raise ArgumentError(
                "init_from",
                f"is a LoRA run (adapters alone); merge it first (`gptkit merge {shown(init_from)} --out DIR`) and "
                "start from the merged run",
                shown(init_from),
            )
        if init_from is not None and config.all_data():
            needed = check_init_tokenizer(Path(init_from), Path(config.all_data()[0].path), objective)
            grow_vocab = 0 < config.model.vocab_size < needed
            if grow_vocab:  # the embedding gains rows for the added tokens (see checkpoint.with_new_vocab_rows)
                config.model.vocab_size = needed
        self.data = TrainingData(config, objective)
        config.model.vocab_size = self.data.vocab_size  # 0 means "the tokenizer's": now filled in
        self.has_val = bool(self.data.eval_sets)
        if self.check_memory:  # before the model and batches exist: a bad config must not take the machine
            check_training_fits(config, self.device, processes_sharing_memory(world), self.dtype)
        torch.manual_seed(self.cfg.seed)
        self.model = build_model(config.model).to(self.device)
        if config.lora.r:
            self.base = self.lora_base(resume, init_from)
            init_from = self.base["run"]
            grow_vocab = self.base["vocab_rows"] < config.model.vocab_size
        if init_from is not None:
            load_weights(self.model, Path(init_from) / WEIGHTS_FILE, grow_vocab=grow_vocab)
        if config.lora.r:  # the base is frozen; only adapters (and the rows of added tokens) train
            apply_lora(self.model, config.lora, first_new_row=self.base["vocab_rows"])
        self.model.recompute_blocks = self.cfg.recompute
        # under torchrun the Newton-Schulz iteration runs in bf16 only if every rank has it natively
        self.optimizer = build_optimizer(self.model, self.cfg, self.device, agree=self.world.all)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=(self.dtype == torch.float16))
        self.generators = {"train": torch.Generator().manual_seed(self.cfg.seed)}
        self.metrics = MetricsLog(run_dir)
        self.state = TrainState()
        if not resume:
            return []
        self.state = load_checkpoint(
            run_dir / CHECKPOINT_FILE, self.model, self.optimizer, self.generators, self.device
        )
        if self.state.step >= self.cfg.max_iters:
            more = (
                "add a stage (and raise `train.max_iters` to match)"
                if config.stages
                else "raise `train.max_iters` (--set train.max_iters=N)"
            )
            raise run_dir_error(run_dir, f"the run already finished its {self.state.step} steps; {more}")
        if self.cfg.time_budget_s and self.state.elapsed_s >= self.cfg.time_budget_s:
            raise run_dir_error(
                run_dir,
                f"the run already spent its time budget ({self.state.elapsed_s:.0f} s of "
                f"{self.cfg.time_budget_s:g}); raise `train.time_budget_s` (--set train.time_budget_s=N)",
            )
        self.cfg.grad_accum, note = check_world_size(self.state, world, self.cfg)  # on the trainer's own copy
        apply_optimizer_settings(self.optimizer, self.cfg)  # --set may change them on resume
        if self.state.scaler:
            self.scaler.load_state_dict(self.state.scaler)
        return [note] if note else []

    def lora_base(self, resume: bool, init_from) -> dict:
        """The run a LoRA run adapts: `init_from` when it starts, the one in its `base.json` when it resumes."""
        if resume:
            return read_base_reference(self.run_dir)
        if init_from is None:
            raise ArgumentError(
                "init_from",
                "LoRA (`lora.r` > 0) trains adapters on a trained model; pass the run to adapt (--init-from RUN)",
            )
        return base_reference(Path(init_from))

    def pick_cpu_dtype(self) -> str:
        """`train.dtype=auto` on a CPU: the dtype this run started with, or a probe's pick (`train/precision.py`);
        returns the reason, for the start-up line."""
        if self.state.dtype:
            self.dtype = getattr(torch, self.state.dtype)
            return "auto: as picked when the run started"
        choice = choose_cpu_dtype(self.model, self.cfg.batch_size, agree=self.world.all)
        self.dtype = choice.dtype
        self.state.dtype = str(choice.dtype).removeprefix("torch.")
        return choice.reason

    def prepare_run_dir(self, resume: bool) -> None:
        """Rank 0's part of the start: a clean run directory (or a tidied one on resume) and the config."""
        if resume:
            remove_stale_run_temp_files(self.run_dir)
            self.metrics.truncate_after(self.state.step)
        else:
            clear_run_dir(self.run_dir)
            self.data.tokenizer.save(self.run_dir / TOKENIZER_FILE)  # as the objective trains with it
            if self.config.lora.r:
                write_base_reference(self.run_dir, self.base)
        write_run_config(self.run_dir, self.config)  # on resume too: `--set train.max_iters` may have changed it

    def step_batches(self):
        """This rank's micro-batches for the current step, as a `next()`-able iterator.

        Every rank draws all grad_accum x world_size micro-batches from the shared generator (cheap: only
        offsets) and reads its own consecutive slice, so the data of a step does not depend on the world size."""
        cfg, block, mixture = self.cfg, self.config.model.block_size, self.data.mixture_at(self.state.step)
        plans = [
            mixture.draw("train", cfg.batch_size, block, self.generators["train"])
            for _ in range(cfg.grad_accum * self.world.size)
        ]
        mine = plans[self.world.rank * cfg.grad_accum : (self.world.rank + 1) * cfg.grad_accum]
        return (mixture.read("train", plan, block, self.device) for plan in mine).__next__

    def evaluate_and_checkpoint(self) -> None:
        """Estimate losses; from step 1 on also save latest/best weights and a resumable checkpoint (rank 0)."""
        if self.world.is_main:
            with self.speed.paused():
                self.evaluate_and_save()
        self.world.barrier()  # the other ranks wait, so no rank runs ahead of a checkpoint

    def evaluate_and_save(self) -> None:
        state = self.state
        self.losses = estimate_loss(self.evaluator, self.data, self.config, state.step, self.device, self.dtype)
        is_best = state.step > 0 and "val" in self.losses and self.losses["val"] < state.best_val_loss
        if is_best:
            state.best_val_loss = self.losses["val"]
        self.echo(
            f"eval step {state.step}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in self.losses.items())
            + (" (best)" if is_best else "")
        )
        # The eval record goes first: a resume from this checkpoint keeps it and does not evaluate again.
        self.record(
            {
                "kind": "eval",
                "step": state.step,
                **{k.replace("val", "val_loss", 1): v for k, v in self.losses.items() if k.startswith("val")},
                "train_loss_eval": self.losses["train"],
                "lr": lr_at(max(state.step - 1, 0), self.cfg, state.elapsed_s),
                "tokens": state.tokens_seen,
                **self.last_rates,
            }
        )
        if state.step > 0:
            save_weights(self.model, self.run_dir / WEIGHTS_FILE, {"step": state.step})
            if is_best:
                meta = {"step": state.step, "val_loss": self.losses["val"]}
                save_weights(self.model, self.run_dir / BEST_FILE, meta)
            state.scaler = self.scaler.state_dict() if self.scaler.is_enabled() else {}
            state.world_size, state.grad_accum = self.world.size, self.cfg.grad_accum
            save_checkpoint(
                self.run_dir / CHECKPOINT_FILE, self.model, self.optimizer, state, self.generators, self.device
            )

    def record(self, record: dict) -> None:
        self.metrics.append(record)
        if self.tensorboard is not None:
            self.tensorboard.write(record)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()

    def progress_text(self) -> str:
        """Where the run stands: step N/max_iters, or step N and the seconds of its time budget spent."""
        step = self.state.step
        if self.cfg.time_budget_s:
            return f"step {step:>6} ({self.state.elapsed_s:.0f}s of {self.cfg.time_budget_s:.0f}s)"
        return f"step {step:>6}/{self.cfg.max_iters}"

    def log_step(self, loss: torch.Tensor, lr: float) -> None:
        state = self.state
        self.train_loss = self.world.mean(loss).item()  # a host sync: only at log steps
        if not math.isfinite(self.train_loss):
            raise GptkitError(f"train: the loss became {self.train_loss} at step {state.step}; lower `train.lr`")
        learned = None  # tokens/s counts what is learned: not padding, nor the users' turns of a chat
        if self.parts.learned is not None:
            learned = self.world.mean(self.parts.take_learned().float()).item() * self.world.size
        if not self.world.is_main:
            return
        self.last_rates = self.speed.measure(learned)
        rates = self.last_rates
        self.record(
            {
                "kind": "train",
                "step": state.step,
                "train_loss": self.train_loss,
                "lr": lr,
                "tokens": state.tokens_seen,
                **rates,
            }
        )
        self.echo(
            f"{self.progress_text()} | loss {self.train_loss:.4f} | lr {lr:.2e} | "
            f"{rates['tokens_per_s'] / 1e3:.1f}k tok/s | {rates['ms_per_step']:.1f} ms/step | "
            f"MFU {100 * rates['mfu']:.1f}%"
        )

    def run(self, progress: bool | None) -> TrainResult:
        """Train until `train.max_iters` steps or the time budget, logging and evaluating as they fall due."""
        cfg, state = self.cfg, self.state
        bar = ProgressBar(cfg, state, shown=progress if self.world.is_main else False)
        clock = RunClock(self.world, cfg.time_budget_s, state.elapsed_s)
        logs = Cadence(cfg.log_interval, also=(1, cfg.max_iters), done_at=state.step)
        evals = Cadence(cfg.eval_interval, done_at=state.step if state.step > 0 else None)  # before a resume
        loss, lr = None, 0.0
        self.model.train()
        while True:
            state.elapsed_s = clock.read(state.step)
            bar.show_seconds(state.elapsed_s)
            done = state.step >= cfg.max_iters or clock.budget_spent()
            if logs.due(state.step, last=done):  # a time budget can stop the run between log steps
                self.log_step(loss, lr)
            if evals.due(state.step, last=done):
                self.evaluate_and_checkpoint()
            if done:
                break
            loss, lr = self.advance()
            bar.show_step()
            if logs.due(state.step):
                self.log_step(loss, lr)
                logs.done(state.step)
                bar.show_loss(self.train_loss)
        bar.close()
        return self.result()

    def advance(self) -> tuple[torch.Tensor, float]:
        """Train one optimizer step; returns its loss (a device tensor, not synced) and its LR."""
        cfg, state = self.cfg, self.state
        lr = lr_at(state.step, cfg, state.elapsed_s)
        batches = self.step_batches()
        seeds = [
            micro_batch_seed(cfg.seed, state.step, self.world.rank * cfg.grad_accum + i) for i in range(cfg.grad_accum)
        ]
        loss = train_step(self.parts, batches, cfg, lr, seeds=seeds)
        state.step += 1
        state.tokens_seen += self.tokens_per_step
        self.speed.steps += 1
        return loss, lr

    def result(self) -> TrainResult:
        state = self.state
        val_loss = self.losses.get("val", math.nan)
        return TrainResult(self.run_dir, state.step, self.train_loss, val_loss, state.best_val_loss, self.world.rank)


def train(
    config: RunConfig,
    out_dir,
    *,
    resume: bool = False,
    overwrite: bool = False,
    init_from=None,
    echo: Callable[[str], None] = _echo,
    progress: bool | None = None,
    check_memory: bool = True,
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
        check_memory: refuse (before allocating) a model and batch that cannot fit in the device's free memory.

    Under torchrun (RANK/WORLD_SIZE set) every process calls this; see the module docstring.
    """
    config = RunConfig.from_dict(config.to_dict())  # the trainer's own: it fills in vocab_size (and grad_accum)
    with distributed(config.train.device) as world:
        trainer = Trainer(
            config,
            Path(out_dir),
            resume=resume,
            overwrite=overwrite,
            init_from=init_from,
            echo=echo,
            world=world,
            check_memory=check_memory,
        )
        try:
            return trainer.run(progress)
        finally:
            trainer.close()
