"""When the training loop stops, logs and evaluates, and how it shows how far it got.

`RunClock` counts the seconds a run has trained (the same on every torchrun rank under a time budget),
`Cadence` says at which steps a periodic job (a log line, an eval) is due, and `ProgressBar` shows a run's
steps, or the seconds of its time budget. None of them trains, logs or evaluates: `loop.Trainer.run` does.
"""

import time

from tqdm import tqdm

from gptkit.checkpoint import TrainState
from gptkit.config import TrainConfig
from gptkit.train.distributed import World

CLOCK_SYNC_STEPS = 10


class RunClock:
    """The seconds a run has trained, counted over all its sessions, and whether its time budget is spent.

    Under a time budget these seconds set the LR and the stop, so all torchrun ranks must agree on them: they
    take rank 0's, shared every CLOCK_SYNC_STEPS steps, as each share costs a collective and a host sync.
    Without a budget the seconds are only recorded, and each rank reads its own."""

    def __init__(self, world: World, budget_s: float, elapsed_s: float):
        """`elapsed_s`: the seconds of the run's earlier sessions."""
        self.world, self.budget_s, self.seconds = world, budget_s, elapsed_s
        self.share_every = CLOCK_SYNC_STEPS if world.is_distributed else 1
        self.started, self.before = time.perf_counter(), elapsed_s

    def read(self, step: int) -> float:
        """The seconds as of `step`; under a budget, between two shares, those of the last share."""
        now = self.before + time.perf_counter() - self.started
        if not self.budget_s:
            self.seconds = now
        elif step % self.share_every == 0:
            self.seconds = self.world.from_main(now)
        return self.seconds

    def budget_spent(self) -> bool:
        return self.budget_s > 0 and self.seconds >= self.budget_s


class Cadence:
    """The steps at which a periodic job (a log line, an eval) is due: every `every`-th, the `also` ones and the
    run's last one, but not the step marked done (a resumed run did its own before it stopped)."""

    def __init__(self, every: int, also: tuple[int, ...] = (), done_at: int | None = None):
        self.every, self.also, self.done_at = every, also, done_at

    def due(self, step: int, *, last: bool = False) -> bool:
        return step != self.done_at and (last or step % self.every == 0 or step in self.also)

    def done(self, step: int) -> None:
        self.done_at = step


class ProgressBar:
    """A tqdm bar of the run: the seconds of its time budget when it has one, else its steps."""

    def __init__(self, cfg: TrainConfig, state: TrainState, shown: bool | None):
        """`shown`: None shows it only when stderr is a terminal."""
        self.budget_s = cfg.time_budget_s
        self.bar = tqdm(
            total=max(1, int(self.budget_s)) if self.budget_s else cfg.max_iters,
            initial=int(state.elapsed_s) if self.budget_s else state.step,
            disable=None if shown is None else not shown,
            unit="s" if self.budget_s else "step",
            dynamic_ncols=True,
        )

    def show_seconds(self, elapsed_s: float) -> None:
        if self.budget_s:
            self.bar.update(max(0, min(int(elapsed_s), int(self.budget_s)) - self.bar.n))

    def show_step(self) -> None:
        if not self.budget_s:
            self.bar.update(1)

    def show_loss(self, loss: float) -> None:
        self.bar.set_postfix(loss=f"{loss:.4f}")

    def close(self) -> None:
        self.bar.close()
