"""The real training step of a preset, set up on the bundled Tiny Shakespeare for the step benchmarks
(`train_speed.py`, `profile_step.py`): `StepSetup(data_dir, preset, overrides).step()` runs one step."""

import torch

from gptkit.config import DataSource, resolve_config
from gptkit.data.prepare import prepare
from gptkit.model import GPT
from gptkit.runtime import compile_blocker, pick_device, resolve_dtype
from gptkit.train.data import TrainingData
from gptkit.train.loop import StepParts, train_step
from gptkit.train.optim import build_optimizer
from gptkit.train.precision import choose_cpu_dtype


class StepSetup:
    def __init__(self, data_dir, preset: str, overrides: list[str], compile_model: bool = False):
        prepare(["shakespeare"], data_dir)
        self.config = resolve_config(preset=preset, overrides=overrides)
        self.config.data = [DataSource(path=str(data_dir))]
        self.data = TrainingData(self.config)
        self.config.model.vocab_size = self.data.vocab_size  # our own config (resolve_config made it)
        self.cfg = self.config.train
        self.device = pick_device(self.cfg.device)
        self.dtype = resolve_dtype(self.cfg.dtype, self.device)
        torch.manual_seed(self.cfg.seed)
        self.model = GPT(self.config.model).to(self.device)
        self.dtype_note = None
        if self.cfg.dtype == "auto" and self.device.type == "cpu":  # as the trainer picks it
            choice = choose_cpu_dtype(self.model, self.cfg.batch_size)
            self.dtype, self.dtype_note = choice.dtype, choice.reason
        # `--compile`, or a preset that compiles (cpu-speedrun), where this machine can (a CPU needs a C++ compiler)
        self.compiled = (compile_model or self.cfg.compile) and compile_blocker(self.device) is None
        self.runner = torch.compile(self.model) if self.compiled else self.model
        self.optimizer = build_optimizer(self.model, self.cfg, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=(self.dtype == torch.float16))
        self.generator = torch.Generator().manual_seed(self.cfg.seed)
        self.parts = StepParts(
            self.runner, self.model, self.optimizer, self.scaler, self.data.objective.loss, self.device, self.dtype
        )

    def next_batch(self):
        return self.data.batch(0, self.cfg.batch_size, self.config.model.block_size, self.generator, self.device)

    def step(self) -> torch.Tensor:
        """One optimizer step; the mean loss as a device tensor (no sync)."""
        cfg = self.cfg
        return train_step(self.parts, self.next_batch, cfg, cfg.lr)
