"""Running as one of several processes under `torchrun`: rank detection, process group, device per rank.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for every process it starts; without them (a plain
`gptkit train`) this is a world of one and nothing here talks to other processes. The backend is nccl
on CUDA and gloo on CPU; each process takes the GPU numbered by its LOCAL_RANK. Entry point: the
`distributed(requested_device)` context manager, which creates the process group and always destroys
what it created (on success, on error and on Ctrl-C).
"""

import contextlib
import datetime
import os
import signal
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gptkit.errors import GptkitError
from gptkit.runtime import pick_device

# How long a rank waits for the others at a collective (e.g. while rank 0 evaluates and checkpoints)
# before it gives up with an error instead of hanging; override with GPTKIT_DIST_TIMEOUT (seconds).
DEFAULT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class World:
    """Where this process stands among the processes of one training run."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")
    local_size: int = 1  # processes of this launch on this machine (torchrun's LOCAL_WORLD_SIZE)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def agree(self, error: BaseException | None) -> None:
        """A barrier that also shares failures: if any rank hit an error before it, every rank raises.

        Rank 0 then raises a GptkitError naming the failing rank (and prints it); a failing rank re-raises
        its own error, marked so that it is not printed twice. In a world of one, `error` is raised as is."""
        if not self.is_distributed:
            if error is not None:
                raise error
            return
        failures: list = [None] * self.size
        dist.all_gather_object(failures, None if error is None else str(error) or type(error).__name__)
        failed = [(rank, message) for rank, message in enumerate(failures) if message is not None]
        if error is not None:
            if isinstance(error, GptkitError):
                error.reported_by_rank_0 = True
            raise error
        if failed:
            rank, message = failed[0]
            agreed = GptkitError(message if rank == 0 else f"rank {rank}: {message}")
            agreed.reported_by_rank_0 = True
            raise agreed

    def from_main(self, value: float) -> float:
        """Rank 0's `value`, on every rank."""
        if not self.is_distributed:
            return value
        shared = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(shared, src=0)
        return float(shared.item())

    def all(self, flag: bool) -> bool:
        """Whether `flag` holds on every rank (itself in a world of one); every rank must call it."""
        return self.mean(torch.tensor(float(flag), device=self.device)).item() == 1

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar tensor over all ranks (itself in a world of one)."""
        if not self.is_distributed:
            return value
        total = value.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)  # gloo has no AVG
        return total / self.size


def torchrun_env() -> tuple[int, int, int] | None:
    """(rank, local_rank, world_size) when launched by torchrun (or any launcher that sets them), else None."""
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return None
    try:
        return int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"])
    except ValueError:
        raise GptkitError("RANK/LOCAL_RANK/WORLD_SIZE are set but are not integers; launch with torchrun") from None


def rank_device(requested: str, local_rank: int) -> torch.device:
    """The device of one rank: its own GPU on CUDA (cuda:LOCAL_RANK), the CPU otherwise."""
    device = pick_device(requested)
    if device.type == "mps":
        raise GptkitError("torchrun on MPS is not supported by torch.distributed; set `train.device=cpu` (--device)")
    if device.type == "cuda":
        if device.index is not None and requested not in ("auto", "cuda"):
            raise GptkitError(
                f"`train.device`={requested!r} under torchrun: each process takes cuda:LOCAL_RANK itself; "
                "set `train.device=cuda` (--device cuda) or auto"
            )
        # Checked against the launch, not this rank alone, so every rank fails alike (and rank 0 says why).
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", local_rank + 1))
        if max(per_node, local_rank + 1) > torch.cuda.device_count():
            raise GptkitError(
                f"torchrun started {per_node} processes on this machine but it has {torch.cuda.device_count()} "
                "GPU(s); lower --nproc_per_node"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def _timeout() -> datetime.timedelta:
    raw = os.environ.get("GPTKIT_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        return datetime.timedelta(seconds=float(raw))
    except ValueError:
        raise GptkitError(f"GPTKIT_DIST_TIMEOUT={raw!r}: must be a number of seconds") from None


def _exit_on_sigterm(signum, frame):
    # torchrun stops the surviving ranks with SIGTERM when one fails; turning it into SystemExit lets
    # `finally` blocks run (process group destroyed, temp files removed) instead of dying mid-write.
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def distributed(requested_device: str = "auto"):
    """Yield the `World` of this process, with a process group set up when there are several ranks."""
    env = torchrun_env()
    if env is None or env[2] == 1:
        rank, local_rank, size = env or (0, 0, 1)
        yield World(rank, local_rank, 1, pick_device(requested_device))
        return
    rank, local_rank, size = env
    device = rank_device(requested_device, local_rank)
    created = not dist.is_initialized()  # a caller's own process group is left alone
    if created:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=_timeout(), device_id=device if device.type == "cuda" else None)
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError):  # only possible from the main thread
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        local = os.environ.get("LOCAL_WORLD_SIZE", "")
        yield World(rank, local_rank, size, device, int(local) if local.isdigit() else size)
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)
        if created and dist.is_initialized():
            dist.destroy_process_group()
