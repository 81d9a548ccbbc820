"""The token budget of a run: how much it trains for its size, said before the compute is spent.

A model with far more parameters than the text it sees memorises that text and repeats it ("오늘 날씨가 " ->
"가격 가격 가격 가격 가격미미미" in one write-up), so `gptkit train` prints the parameters (and without the
embeddings), the training tokens, tokens per parameter and epochs, and warns once, in plain words, when tokens
per parameter are far below the compute-optimal ~20 (Hoffmann et al. 2022, "Training Compute-Optimal Large
Language Models") or when the run goes over its data many times. `gptkit info RUN` and the HTML report say
the same. Entry points: `TokenBudget`, `data_train_tokens`.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from gptkit.config import GPTConfig, RunConfig
from gptkit.memory import param_count

COMPUTE_OPTIMAL = 20  # training tokens per parameter at the compute-optimal point (Hoffmann et al. 2022)
FAR_BELOW = 1.0  # tokens of data per parameter: 20x under it, where the warning starts
MANY_EPOCHS = 10  # passes over the training data, where the warning starts ...
REPEATED_BELOW = 10.0  # ... for data under this many tokens per parameter (a bigram cannot memorise 50K tokens)


def embedding_count(m: GPTConfig) -> int:
    """The token embedding (shared with a tied head) and the learned position table; a bigram's whole table."""
    if m.arch == "bigram":
        return m.vocab_size * m.vocab_size
    return m.vocab_size * m.n_embd + (m.block_size * m.n_embd if m.pos == "learned" else 0)


@dataclass
class TokenBudget:
    parameters: int
    embedding_parameters: int
    training_tokens: int | None  # None: a time budget decides the steps
    data_tokens: int | None  # the training split's tokens (None: the data is not at hand)

    @classmethod
    def of(cls, m: GPTConfig, training_tokens: int | None, data_tokens: int | None) -> "TokenBudget":
        return cls(param_count(m), embedding_count(m), training_tokens, data_tokens)

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
        if fine_tune:
            if self.epochs is None or self.epochs <= MANY_EPOCHS:
                return None
            return (
                f"warning: this fine-tune goes over its {_millions(self.data_tokens)} tokens of data "
                f"{self.epochs:.0f} times: expect it to memorise them and repeat them. Use fewer steps or more "
                "data (or mix in text like the pretraining data)."
            )
        little = self.data_per_parameter is not None and self.data_per_parameter < FAR_BELOW
        repeats = self.epochs is not None and self.epochs > MANY_EPOCHS and self.data_per_parameter < REPEATED_BELOW
        if not (little or repeats):
            return None
        why = []
        if little:
            why.append(
                f"its {_millions(self.data_tokens)} tokens of data are {self.data_per_parameter:.2g} per parameter, "
                f"far below the ~{COMPUTE_OPTIMAL} a model this size learns well from"
            )
        if repeats:
            why.append(f"the run goes over {'them' if little else 'its data'} {self.epochs:.0f} times")
        return (
            f"warning: this model is large for its data: {', and '.join(why)}. Expect it to memorise the training "
            "text and repeat it (the same words over and over) instead of learning the language. Use a smaller "
            "model (e.g. --preset tiny), more text, or fewer steps."
        )


def data_train_tokens(config: RunConfig) -> int | None:
    """Tokens in the training splits of the run's datasets, from their meta.json; None if one is not at hand."""
    total = 0
    for source in config.all_data():
        try:
            meta = json.loads((Path(source.path) / "meta.json").read_text(encoding="utf-8"))
            total += int(meta["train_tokens"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return total or None


def format_ratio(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2g}"


def format_size(count: int) -> str:
    """A parameter count: 0.81M, or 4,225 for the smallest models."""
    return f"{count / 1e6:.2f}M" if count >= 100_000 else f"{count:,}"


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}M" if count >= 1_000_000 else f"{count:,}"
