"""Causal language modelling, the default: predict each next token from the ones before it (GPT).

Batches are windows of `block_size + 1` tokens from the run's datasets, mixed by weight, one mixture per
stage; the loss is the mean cross-entropy of the next token; `gptkit eval` reports loss, perplexity and bits per
byte on prepared data and on raw text.
"""

import math

from gptkit.data.chat import is_chat_data
from gptkit.data.mixture import Mixture
from gptkit.errors import ArgumentError, GptkitError
from gptkit.evaluate import evaluate_dataset, evaluate_text
from gptkit.objectives.base import Objective
from gptkit.paths import shown


class CausalLM(Objective):
    name = "causal"

    def check(self) -> None:
        if not self.config.model.causal:
            raise GptkitError(
                f"`model.causal`=false lets every position see the next token, so `train.objective`={self.name} "
                "would learn nothing; set `train.objective=mlm`, or keep `model.causal=true`"
            )

    def batch_plan(self, datasets: dict, tokenizer) -> tuple[list, list]:
        config, block = self.config, self.config.model.block_size
        sources = {path: self.batch_source(dataset, block) for path, dataset in datasets.items()}
        self.check_sources(list(sources.values()))
        phases = [(stage.steps, stage.data) for stage in config.stages] or [(math.inf, config.data)]
        plan, end = [], 0
        for steps, data in phases:
            for source in data:
                sources[source.path].check_block_size("train", block)
            end += steps
            plan.append((end, Mixture([sources[s.path] for s in data], [s.weight for s in data])))
        return plan, [s for s in sources.values() if s.has_windows("val", block)]

    def batch_source(self, dataset, block_size: int):
        """What batches of `dataset` are drawn from: its windows of `block_size + 1` tokens, here."""
        return dataset

    def check_sources(self, sources: list) -> None:
        """Refuse a set of batch sources this objective cannot train on: chat data wants its own objective."""
        for source in sources:
            if is_chat_data(source.path):
                raise ArgumentError(
                    "data",
                    "conversations from `prepare --chat`: fine-tune on them with `train.objective=sft` (--preset sft), "
                    f"which learns the replies only; `train.objective`={self.name} would learn every token",
                    shown(source.path),
                )

    def evaluate(self, run, *, data=(), texts=(), split="val", max_tokens=None, context=None, whole_word=None):
        if whole_word:
            raise ArgumentError("whole_word", "only a masked LM masks whole words; a causal model scores every token")
        limits = {"max_tokens": max_tokens, "context": context}
        return [evaluate_dataset(run, d, split=split, **limits) for d in data] + [
            evaluate_text(run, t, **limits) for t in texts
        ]
