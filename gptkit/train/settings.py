"""Which settings a training run uses: new ones, a resumed run's own, or another run's network for fine-tuning.

Order, later wins: the base (defaults; the run's own `config.json` on resume; the shape of the run given as
`init_from`) < preset < TOML file < overrides; then `data`, when given, replaces the datasets. Shared by
`gptkit train` and `gptkit.train(...)` from Python. Entry point: `run_settings`.
"""

from pathlib import Path

from gptkit.checkpoint import read_run_config
from gptkit.config import DataSource, RunConfig, resolve_config
from gptkit.errors import GptkitError
from gptkit.objectives import objective_for


def run_settings(
    out_dir,
    *,
    config: RunConfig | None = None,
    preset: str | None = None,
    toml_path: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    data: str | Path | None = None,
    resume: bool = False,
    init_from=None,
) -> RunConfig:
    """The RunConfig to train `out_dir` with (a new object; `config`, when given, is copied, never changed)."""
    if resume and init_from is not None:
        raise GptkitError("resume and init_from: a resumed run already has its weights; give one of them")
    if config is not None:
        if preset or toml_path or resume or init_from is not None:
            raise GptkitError(
                "config: give a RunConfig, or a preset/TOML file, resume or init_from (which read a run's own "
                "settings), not both"
            )
        settings = resolve_config(overrides=list(overrides), base=config)  # a copy of `config`
    elif resume:
        base = read_run_config(out_dir)  # the run's own settings; overrides may still change e.g. max_iters
        settings = resolve_config(preset=preset, toml_path=toml_path, overrides=list(overrides), base=base)
    elif init_from is not None:
        base = read_run_config(init_from)  # its network shape (and vocabulary size) carry over
        settings = resolve_config(
            preset=preset, toml_path=toml_path, overrides=list(overrides), base=base, keep_model=True
        )
    else:
        settings = resolve_config(preset=preset, toml_path=toml_path, overrides=list(overrides))
    if data is not None:
        settings.data = [DataSource(path=str(data))]
    objective_for(settings).check()  # e.g. mlm with model.causal=true: refused before any folder is touched
    return settings
