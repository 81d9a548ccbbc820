"""What every training objective decides, and the defaults most share.

An objective owns what differs between ways of training the same network: the settings it needs, the
tokenizer it trains with, where batches come from, the loss of a batch, what `gptkit eval` reports, and what
a loaded run may do (continue text, fill in blanks). The trainer, evaluation, run loading, the report and the
command line ask the objective instead of testing its name. It does not build the model or run the loop.
"""

import torch

from gptkit.config import RunConfig
from gptkit.errors import GptkitError


def not_a_masked_lm(run) -> GptkitError:
    """The error for filling in masks (or scoring masked tokens) with a run that is no masked LM."""
    return GptkitError(
        f"{run.run_dir} is not a masked language model; train one with `train.objective=mlm` and `model.causal=false`"
    )


class Objective:
    """What an objective decides. Where most objectives agree (the loss of (inputs, targets) batches, a run that
    continues text) the answer is given here; `batch_plan` and `evaluate` each objective must give itself."""

    name = ""
    generates_text = True  # a loaded run continues text (`sample`, `chat`, `serve`)

    def __init__(self, config: RunConfig):
        self.config = config

    # -- training ----------------------------------------------------------------------------------------
    def describe(self) -> list[str]:
        """Lines for the start of a training log: the objective's own settings, if it has any."""
        return []

    def check(self) -> None:
        """Refuse settings this objective cannot train with (one line naming them)."""

    def training_tokenizer(self, tokenizer):
        """The tokenizer a run trains (and is saved) with, given its data's."""
        return tokenizer

    def check_vocab(self, model_vocab: int, tokenizer_vocab: int) -> None:
        if model_vocab < tokenizer_vocab:
            raise GptkitError(
                f"`model.vocab_size`={model_vocab} is smaller than the tokenizer's ({tokenizer_vocab}); leave it "
                "at 0 to take it from the data"
            )

    def batch_plan(self, datasets: dict, tokenizer) -> tuple[list, list]:
        """([(last step + 1, batch source), ...], [eval sources]): where training and eval batches come from.
        A batch source has `draw`, `read`, `get_batch` and `name` (see `gptkit.data.mixture.Mixture`)."""
        raise NotImplementedError

    learned_tokens = None  # or a function: batch -> the number of tokens it teaches (a tensor), for tokens/s

    def loss(self, model, batch) -> torch.Tensor:
        """The mean loss of one batch from a batch source."""
        inputs, targets = batch
        return model(inputs, targets, return_logits=False)[1]

    # -- a trained run ---------------------------------------------------------------------------------
    def check_generates(self, run_dir) -> None:
        """Refuse to continue text when the objective's model cannot."""

    def fill(self, run, text: str, *, top_k: int = 5):
        raise not_a_masked_lm(run)

    def evaluate(self, run, *, data=(), texts=(), split="val", max_tokens=None, context=None, whole_word=None):
        """Results (each with `to_dict`, `row` and a class-level `HEADER`) on prepared data and raw texts."""
        raise NotImplementedError

    def next_step(self, run_dir) -> str:
        """What to do with a finished run, for the last line of `gptkit train`."""
        return f'sample with: gptkit sample {run_dir} --prompt "..."'
