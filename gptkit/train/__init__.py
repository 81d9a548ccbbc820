"""Training: the loop (`loop.train`), its settings (`settings`), the optimizer and LR schedule (`optim`), and
logging (`metrics`).

The package itself can be called, as the one-line way to train from Python:
`gptkit.train("runs/x", data="data/x", preset="cpu-baby")`, and `gptkit.train("runs/x", resume=True)` to
continue a run with its own settings. It imports nothing heavy until called.
"""

import inspect
import sys
import types


def train(
    out_dir,
    *,
    data=None,
    preset: str | None = None,
    config=None,
    overrides=(),
    resume: bool = False,
    overwrite: bool = False,
    init_from=None,
    **options,
):
    """Train a run into `out_dir` as `gptkit train` does; returns a `gptkit.train.loop.TrainResult`.

    Settings come from `config` (a `RunConfig`, copied) or `preset`, then `overrides` ("train.lr=3e-4", ...),
    with `data` (a prepared folder) as the dataset; `resume=True` continues `out_dir` with its own settings;
    `init_from` starts from another run's weights. `options` go to `gptkit.train.loop.train` (`echo`,
    `progress`, `check_memory`)."""
    from gptkit.train.loop import train as train_run
    from gptkit.train.settings import run_settings

    settings = run_settings(
        out_dir, config=config, preset=preset, overrides=overrides, data=data, resume=resume, init_from=init_from
    )
    return train_run(settings, out_dir, resume=resume, overwrite=overwrite, init_from=init_from, **options)


class _CallablePackage(types.ModuleType):
    """Lets `gptkit.train(...)` call `train` while `gptkit.train.loop` and friends stay importable."""

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


_CallablePackage.__call__.__signature__ = inspect.signature(train)  # help() and IDEs show train's arguments
_CallablePackage.__call__.__doc__ = train.__doc__
sys.modules[__name__].__class__ = _CallablePackage
