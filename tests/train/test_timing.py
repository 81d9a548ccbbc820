"""The loop's pacing parts on their own: the run clock (and its torchrun share), log/eval cadences, the bar."""

from gptkit.checkpoint import TrainState
from gptkit.config import TrainConfig
from gptkit.train.timing import CLOCK_SYNC_STEPS, Cadence, ProgressBar, RunClock


class FakeWorld:
    """A torchrun world whose rank 0 always reports `main_seconds`; counts the shares."""

    def __init__(self, is_distributed: bool, main_seconds: float = 100.0):
        self.is_distributed, self.main_seconds, self.shares = is_distributed, main_seconds, 0

    def from_main(self, value: float) -> float:
        self.shares += 1
        return self.main_seconds if self.is_distributed else value


def test_without_a_budget_each_rank_reads_its_own_clock_and_never_shares():
    world = FakeWorld(is_distributed=True)
    clock = RunClock(world, budget_s=0.0, elapsed_s=50.0)
    assert [50.0 <= clock.read(step) < 60.0 for step in range(12)] == [True] * 12  # earlier sessions count
    assert world.shares == 0 and not clock.budget_spent()


def test_under_a_budget_one_process_reads_its_clock_every_step():
    world = FakeWorld(is_distributed=False)
    clock = RunClock(world, budget_s=60.0, elapsed_s=59.0)
    assert 59.0 <= clock.read(3) < 60.0 and world.shares == 1
    assert not clock.budget_spent()
    clock.before = 61.0  # as if two seconds had passed
    assert clock.read(4) >= 61.0 and clock.budget_spent()


def test_under_a_budget_torchrun_ranks_take_rank_0s_seconds_every_few_steps():
    world = FakeWorld(is_distributed=True, main_seconds=100.0)
    clock = RunClock(world, budget_s=100.0, elapsed_s=7.0)
    assert clock.read(1) == 7.0 and not clock.budget_spent()  # no share yet: the resumed seconds stand
    assert clock.read(CLOCK_SYNC_STEPS) == 100.0 and world.shares == 1
    assert clock.budget_spent()  # every rank stops at the same step
    world.main_seconds = 200.0
    assert clock.read(CLOCK_SYNC_STEPS + 1) == 100.0 and world.shares == 1  # kept until the next share
    assert clock.read(2 * CLOCK_SYNC_STEPS) == 200.0 and world.shares == 2


def test_log_cadence_is_every_interval_the_first_and_last_steps_each_once():
    logs = Cadence(5, also=(1, 12), done_at=0)
    assert [s for s in range(13) if logs.due(s)] == [1, 5, 10, 12]
    logs.done(10)
    assert not logs.due(10, last=True)  # the run stopping at a logged step logs it once
    assert logs.due(11, last=True) and not logs.due(11)  # a time budget stopped it between log steps
    assert not Cadence(5, done_at=7).due(7, last=True)  # a resumed run at its first step logged nothing yet


def test_eval_cadence_skips_only_the_step_a_resumed_run_evaluated_before():
    assert [s for s in range(21) if Cadence(10).due(s)] == [0, 10, 20]
    resumed = Cadence(10, done_at=10)
    assert [s for s in range(10, 31) if resumed.due(s)] == [20, 30]
    assert not resumed.due(10, last=True) and resumed.due(13, last=True)


def test_the_bar_counts_steps_or_the_seconds_of_a_budget():
    # Shown (on the captured stderr), as a hidden tqdm bar counts nothing.
    steps = ProgressBar(TrainConfig(max_iters=30), TrainState(step=10, elapsed_s=4.0), shown=True)
    steps.show_seconds(9.0)
    steps.show_step()
    assert (steps.bar.total, steps.bar.n) == (30, 11)
    timed = ProgressBar(TrainConfig(time_budget_s=20.0), TrainState(step=10, elapsed_s=4.0), shown=True)
    timed.show_step()
    timed.show_seconds(9.5)
    assert (timed.bar.total, timed.bar.n) == (20, 9)
    timed.show_seconds(25.0)
    assert timed.bar.n == 20  # never past the budget
    steps.close()
    timed.close()
