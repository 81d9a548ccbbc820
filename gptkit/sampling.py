"""The sampling settings: how new tokens are chosen, with the one set of defaults every way in shares.

`gptkit sample`, `gptkit chat`, `gptkit serve` (a request's omitted fields) and `Run.generate` all start from
`SamplingConfig()`; the CLI flags take their defaults from it. Plain data with its checks; no torch here, so
the command line can read the defaults without loading it. Generation itself is `gptkit.generate`.
"""

import dataclasses
from dataclasses import dataclass

from gptkit.errors import ArgumentError, GptkitError


@dataclass(frozen=True)
class SamplingConfig:
    """How new tokens are chosen. Checked when made (also by `with_changes`), so a bad value fails before any work."""

    max_new_tokens: int = 200  # tokens to generate; fewer when a stop string ends the text
    temperature: float = 0.8  # 0 = greedy; < 1 sharpens the model's distribution, > 1 flattens it
    top_k: int | None = None  # sample among the k likeliest tokens only; None = off
    top_p: float | None = None  # nucleus: the smallest set of likeliest tokens holding this much probability
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the context (CTRL); 1 = off
    stop: tuple[str, ...] = ()  # strings that end the text; they are not part of it
    seed: int | None = None  # the same seed gives the same text; None = fresh randomness

    def __post_init__(self) -> None:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        object.__setattr__(self, "stop", stop)
        problems = [
            (_is_int(self.max_new_tokens) and self.max_new_tokens >= 0, "max_new_tokens", "must be an int >= 0"),
            (_is_number(self.temperature) and self.temperature >= 0, "temperature", "must be >= 0 (0 = greedy)"),
            (self.top_k is None or _is_int(self.top_k) and self.top_k >= 1, "top_k", "must be >= 1 (None = off)"),
            (self.top_p is None or _is_number(self.top_p) and 0 < self.top_p <= 1, "top_p", "must be in (0, 1]"),
            (
                _is_number(self.repetition_penalty) and self.repetition_penalty > 0,
                "repetition_penalty",
                "must be > 0 (1 = off)",
            ),
            (all(isinstance(s, str) for s in stop), "stop", "must be a string or a list of strings"),
            (self.seed is None or _is_int(self.seed), "seed", "must be an int (or None for fresh randomness)"),
        ]
        for fine, argument, problem in problems:
            if not fine:
                raise ArgumentError(argument, problem, getattr(self, argument))

    def with_changes(self, **changes) -> "SamplingConfig":
        """A copy with these fields changed (and checked); an unknown name is an error naming it."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            names = ", ".join(f.name for f in dataclasses.fields(self))
            raise GptkitError(f"unknown sampling option {sorted(unknown)[0]!r}; the options are {names}")
        return dataclasses.replace(self, **changes)

    def token_options(self) -> dict:
        """The options `generate_tokens` takes (the text-level `stop` and the length are passed apart)."""
        names = ("temperature", "top_k", "top_p", "repetition_penalty", "seed")
        return {name: getattr(self, name) for name in names}

    def describe(self) -> str:
        return (
            f"temperature {self.temperature}, top-k {self.top_k or 'off'}, top-p {self.top_p or 'off'}, "
            f"penalty {self.repetition_penalty}, max {self.max_new_tokens} tokens, "
            f"stop {list(self.stop) or 'none'}, seed {self.seed if self.seed is not None else 'random'}"
        )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN


DEFAULT_SAMPLING = SamplingConfig()
