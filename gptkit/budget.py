"""The token budget of a run: how much it trains for its size, said before the compute is spent.

A model with far more parameters than the text it sees memorises that text and repeats it ("오늘 날씨가 " ->
"가격 가격 가격 가격 가격미미미" in one write-up), so `gptkit train` prints the parameters (and without the
embeddings), the training tokens, tokens per parameter and epochs, and warns once, in plain words, when tokens
per parameter are far below the compute-optimal ~20 (Hoffmann et al. 2022, "Training Compute-Optimal Large
Language Models") or when the run goes over its data many times. `gptkit info RUN` and the HTML report say
the same. In a mixture (or in stages) each dataset is seen as often as its weight (or its stage's steps)
says, so a small dataset mixed in at a high weight can be repeated many times while the whole is not: the
warning and the line follow the most repeated one. Entry points: `TokenBudget`, `data_shares`.
"""

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from gptkit.config import GPTConfig, RunConfig
from gptkit.memory import param_count

COMPUTE_OPTIMAL = 20  # training tokens per parameter at the compute-optimal point (Hoffmann et al. 2022)
FAR_BELOW = 1.0  # tokens of data per parameter: 20x under it, where the warning starts
MANY_EPOCHS = 10  # passes over the training data, where the warning starts ...
REPEATED_BELOW = 10.0  # ... for data under this many tokens per parameter (a bigram cannot memorise 50K tokens)
ONE_DATASET_MORE = 1.5  # a dataset repeated this many times more than the whole is named


def embedding_count(m: GPTConfig) -> int:
    """The token embedding (shared with a tied head) and the learned position table; a bigram's whole table."""
    if m.arch == "bigram":
        return m.vocab_size * m.vocab_size
    return m.vocab_size * m.n_embd + (m.block_size * m.n_embd if m.pos == "learned" else 0)


@dataclass(frozen=True)
class DataShare:
    """One dataset of a run: its training split's tokens, and the share of the run's training tokens drawn
    from it."""

    name: str
    tokens: int
    share: float


@dataclass
class TokenBudget:
    parameters: int
    embedding_parameters: int
    training_tokens: int | None  # None: a time budget decides the steps
    data_tokens: int | None  # the training split's tokens (None: the data is not at hand)
    shares: tuple[DataShare, ...] = ()  # per dataset, when the run has several

    @classmethod
    def of(
        cls,
        m: GPTConfig,
        training_tokens: int | None,
        data_tokens: int | None = None,
        shares: list[DataShare] | None = None,
    ) -> "TokenBudget":
        """`data_tokens` defaults to the sum of the `shares`' tokens (None where they are not at hand)."""
        if data_tokens is None and shares:
            data_tokens = sum(d.tokens for d in shares) or None
        return cls(param_count(m), embedding_count(m), training_tokens, data_tokens, tuple(shares or ()))

    @property
    def named_repeats(self) -> tuple[DataShare, float] | None:
        """The dataset of a mixture (or of stages) gone over far more often than the whole, and its epochs."""
        if self.training_tokens is None or len(self.shares) < 2:
            return None
        epochs = [(d, self.training_tokens * d.share / d.tokens) for d in self.shares if d.tokens]
        most = max(epochs, key=lambda pair: pair[1], default=None)
        return most if most and most[1] > ONE_DATASET_MORE * (self.epochs or 0.0) else None  # not a rounding's worth

    @property
    def repeats(self) -> float | None:
        """Passes over the most repeated data: that dataset's (`named_repeats`), or the whole data's."""
        return self.named_repeats[1] if self.named_repeats else self.epochs

    @property
    def tokens_per_parameter(self) -> float | None:
        return None if self.training_tokens is None else self.training_tokens / max(self.parameters, 1)

    @property
    def epochs(self) -> float | None:
        if self.training_tokens is None or not self.data_tokens:
            return None
        return self.training_tokens / self.data_tokens

    def line(self) -> str:
        """`budget: 0.80M parameters (0.79M without embeddings), 1.54M training tokens = 1.9 per parameter ...`"""
        without = self.parameters - self.embedding_parameters
        params = f"{format_size(self.parameters)} parameters ({format_size(without)} without embeddings)"
        if self.training_tokens is None:
            return f"budget: {params}; the number of training tokens is set by the time budget"
        text = (
            f"budget: {params}, {_millions(self.training_tokens)} training tokens = "
            f"{format_ratio(self.tokens_per_parameter)} per parameter (compute-optimal: about {COMPUTE_OPTIMAL})"
        )
        if self.epochs is not None:
            text += f", {self.epochs:.3g} epochs over {_millions(self.data_tokens)} tokens of data"
        if self.named_repeats:
            text += f" ({self.named_repeats[0].name}: {self.named_repeats[1]:.3g} epochs)"
        return text

    @property
    def data_per_parameter(self) -> float | None:
        return None if not self.data_tokens else self.data_tokens / max(self.parameters, 1)

    def warning(self, fine_tune: bool = False) -> str | None:
        """Plain words when the run will memorise rather than learn (too little data for the model's size, or
        the same data seen many times), with what to expect and what to do. A run that is merely short (few
        training tokens, plenty of data) gets the numbers in `line` but no warning: it is undertrained, not
        memorising. A fine-tune (`--init-from`, LoRA) starts from what its base learned, so only seeing its data
        many times counts, and the advice is about steps and data, not a smaller model."""
        named = self.named_repeats
        times = self.repeats
        what = f"the {_millions(named[0].tokens)} tokens of {named[0].name}" if named else None
        lower_share = (
            f"Give {named[0].name} a smaller share of the training (a lower weight, or fewer steps in its stage), "
            "more text"
            if named
            else ""
        )
        if fine_tune:
            if times is None or times <= MANY_EPOCHS:
                return None
            advice = (
                f"{lower_share}."
                if named
                else "Use fewer steps or more data (or mix in text like the pretraining data)."
            )
            return (
                f"warning: this fine-tune goes over {what or f'its {_millions(self.data_tokens)} tokens of data'} "
                f"{times:.0f} times: expect it to memorise them and repeat them. {advice}"
            )
        little = self.data_per_parameter is not None and self.data_per_parameter < FAR_BELOW
        repeated_tokens = named[0].tokens if named else self.data_tokens or 0
        repeats = (
            times is not None and times > MANY_EPOCHS and repeated_tokens / max(self.parameters, 1) < REPEATED_BELOW
        )
        if not (little or repeats):
            return None
        why = []
        if little:
            why.append(
                f"its {_millions(self.data_tokens)} tokens of data are {self.data_per_parameter:.2g} per parameter, "
                f"far below the ~{COMPUTE_OPTIMAL} a model this size learns well from"
            )
        if repeats:
            why.append(f"the run goes over {what or ('them' if little else 'its data')} {times:.0f} times")
        advice = "Use a smaller model (e.g. --preset tiny), more text, or fewer steps."
        if repeats and named:
            advice = f"{lower_share}, or use a smaller model."
        return (
            f"warning: this model is large for its data: {', and '.join(why)}. Expect it to memorise the training "
            f"text and repeat it (the same words over and over) instead of learning the language. {advice}"
        )


def data_shares(config: RunConfig, tokens_of=None, steps: int | None = None) -> list[DataShare] | None:
    """Each dataset's training tokens (`tokens_of(source)`, default: its meta.json) and its share of the run's
    training tokens: by weight within a mixture, by steps across stages (summed when a dataset is in several)
    over the first `steps` steps (default: the whole plan; past it the last stage goes on, as in training).
    None if a dataset's tokens are not at hand."""
    phases = [(1.0, config.data)] if config.data else _stage_fractions(config, steps)
    shares: dict[str, float] = defaultdict(float)
    for fraction, sources in phases:
        weights = sum(source.weight for source in sources)
        for source in sources:
            shares[source.path] += fraction * source.weight / weights if weights > 0 else 0.0
    result = []
    for source in config.all_data():
        tokens = (tokens_of or _meta_train_tokens)(source)
        if tokens is None:
            return None
        result.append(DataShare(source.label, tokens, shares[source.path]))
    return result


def _stage_fractions(config: RunConfig, steps: int | None) -> list[tuple[float, list]]:
    """Each stage's share of the first `steps` steps, and its data."""
    planned = sum(stage.steps for stage in config.stages)
    steps = planned if steps is None else steps
    ran, start = [], 0
    for number, stage in enumerate(config.stages):
        end = start + stage.steps if number < len(config.stages) - 1 else max(start + stage.steps, steps)
        ran.append((max(0, min(end, steps) - start), stage.data))
        start = end
    total = sum(count for count, _ in ran)
    return [(count / total, data) for count, data in ran] if total else []


def _meta_train_tokens(source) -> int | None:
    try:
        meta = json.loads((Path(source.path) / "meta.json").read_text(encoding="utf-8"))
        return int(meta["train_tokens"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def format_ratio(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2g}"


def format_size(count: int) -> str:
    """A parameter count: 0.81M, or 4,225 for the smallest models."""
    return f"{count / 1e6:.2f}M" if count >= 100_000 else f"{count:,}"


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}M" if count >= 1_000_000 else f"{count:,}"
