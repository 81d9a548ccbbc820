"""TensorBoard event files beside `metrics.jsonl`, when `log.tensorboard = true`.

Every number of a metrics record becomes a scalar tagged `KIND/FIELD` (`train/train_loss`,
`eval/val_loss`, ...) at its step. A resumed run drops the events written after its checkpoint
(`purge_step`), as `MetricsLog.truncate_after` does, so the curves read like one run.
Entry point: `TensorBoardLog(run_dir, resume_step)`.
"""

from pathlib import Path

from gptkit.errors import GptkitError

TENSORBOARD_DIR = "tensorboard"


def summary_writer_class():
    """torch's SummaryWriter, or a one-line error when the tensorboard package is missing (checked before a
    run touches its directory)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GptkitError(
            "`log.tensorboard`=true needs the tensorboard package: pip install tensorboard "
            "(or gptkit[tensorboard]); or leave it off (metrics.jsonl is always written)"
        ) from None
    return SummaryWriter


class TensorBoardLog:
    def __init__(self, run_dir, resume_step: int | None = None):
        SummaryWriter = summary_writer_class()
        purge = None if resume_step is None else resume_step + 1
        # flush_secs: TensorBoard shows a live run within seconds, not the default two minutes
        self.writer = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR), purge_step=purge, flush_secs=10)

    def write(self, record: dict) -> None:
        kind, step = record.get("kind", "train"), record["step"]
        for key, value in record.items():
            if key in ("kind", "step") or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if kind == "eval" and not (key.startswith("val_loss") or key == "train_loss_eval"):
                continue  # an eval record repeats the last lr and speed; they belong to the train curves
            self.writer.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        self.writer.close()
