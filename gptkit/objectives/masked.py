"""Masked language modelling (BERT-style): hide some tokens of a passage and predict them from both sides.

Needs `model.causal = false` and one dataset. The run's tokenizer gains `<|mask|>` and `<|pad|>`; batches are
padded passages with BERT's masking (`gptkit.data.mlm`), the loss counts the selected tokens only, `gptkit eval`
reports masked-token loss, accuracy and bits per character, and a trained run fills in `<|mask|>` rather
than continuing text. Settings: the `[mlm]` section (`gptkit.config.MaskedLMConfig`).
"""

import math

import torch

from gptkit.data.masking import MaskingRecipe
from gptkit.data.mlm import MaskedPassages
from gptkit.errors import ArgumentError, GptkitError
from gptkit.objectives.base import Objective
from gptkit.objectives.masked_eval import check_masked_lm, evaluate_masked
from gptkit.paths import shown
from gptkit.tokenizer import MASK_TOKEN, PAD_TOKEN, with_specials
from gptkit.tokenizer.char import UnknownCharacterError


class MaskedLM(Objective):
    name = "mlm"
    generates_text = False

    def describe(self) -> list[str]:
        return ["mlm: " + " ".join(f"{k}={v}" for k, v in vars(self.config.mlm).items())]

    def check(self) -> None:
        if self.config.model.causal:
            raise GptkitError(
                "`train.objective`=mlm needs `model.causal`=false (a masked token is predicted from both sides)"
            )
        if len(self.config.all_data()) > 1 or self.config.stages:
            raise GptkitError("`train.objective`=mlm trains on one dataset; mixtures and stages are causal-only")

    def training_tokenizer(self, tokenizer):
        return with_specials(tokenizer, [MASK_TOKEN, PAD_TOKEN])

    def check_vocab(self, model_vocab: int, tokenizer_vocab: int) -> None:
        if model_vocab < tokenizer_vocab:
            raise GptkitError(
                f"`train.objective`=mlm adds <|mask|> and <|pad|> to the tokenizer ({tokenizer_vocab} ids), but the "
                f"model has {model_vocab} (from init_from / resume of a causal run?); train the masked LM from "
                "scratch, or from a masked LM"
            )

    def batch_plan(self, datasets: dict, tokenizer) -> tuple[list, list]:
        dataset = next(iter(datasets.values()))
        config = self.config
        masked = MaskedPassages(
            dataset, tokenizer, config.model.block_size, MaskingRecipe.of(config.mlm), config.mlm.passages
        )
        if not masked.has_split("train"):
            raise ArgumentError("data", "the train split is empty", shown(dataset.path))
        masked.name = dataset.name
        return [(math.inf, masked)], [masked] if masked.has_split("val") else []

    def loss(self, model, batch) -> torch.Tensor:
        inputs, targets, real = batch  # real: (B, T) bool, False at padding
        return model(inputs, targets, key_mask=real, return_logits=False)[1]

    def check_generates(self, run_dir) -> None:
        raise GptkitError(
            f"{run_dir} is a masked language model (model.causal=false): it does not continue text; "
            f'use `gptkit fill {run_dir} "text with <|mask|>"`'
        )

    def next_step(self, run_dir) -> str:
        return f'fill in with: gptkit fill {run_dir} "text with <|mask|>"'

    def evaluate(self, run, *, data=(), texts=(), split="val", max_tokens=None, context=None, whole_word=None):
        if texts:
            raise ArgumentError(
                "texts", "a masked LM is evaluated on prepared data only, not on raw text", flag="--text"
            )
        if context is not None:
            problem = "only a causal model takes a context length; a masked LM is scored on whole passages"
            raise ArgumentError("context", problem, context)
        return [evaluate_masked(run, d, split=split, whole_word=whole_word, max_tokens=max_tokens) for d in data]

    @torch.no_grad()
    def fill(self, run, text: str, *, top_k: int = 5) -> tuple[list[list[tuple[str, float]]], str]:
        """For each `<|mask|>` in `text`: the `top_k` likeliest tokens with their probabilities; and the text
        with every mask replaced by its likeliest token.

        With a BPE tokenizer a space before a mask belongs to the masked word (" be" is one token, and a lone
        " " is rare in training), so "not to <|mask|>" asks for the token after "to", space included."""
        check_masked_lm(run)
        if top_k < 1:
            raise ArgumentError("top_k", "must be >= 1", top_k)
        if MASK_TOKEN not in text:
            raise GptkitError(
                f"text: put {MASK_TOKEN} where a token should be guessed, e.g. 'To be or not to {MASK_TOKEN}'"
            )
        if getattr(run.tokenizer, "merges", None) is not None:
            text = text.replace(" " + MASK_TOKEN, MASK_TOKEN)
        try:
            ids = run.tokenizer.encode(text, allowed_special=[MASK_TOKEN])
        except UnknownCharacterError as err:
            raise GptkitError(f"text: character {err.char!r} is not in the vocabulary of {run.run_dir}") from None
        block = run.model.config.block_size
        if len(ids) > block:
            raise GptkitError(f"text: {len(ids)} tokens, more than block_size={block}; shorten it")
        run.model.eval()
        logits, _ = run.model(torch.tensor([ids], device=run.device))
        ordinary = min(run.tokenizer.specials.values())  # specials come last; a guess is never one
        probs = logits[0, :, :ordinary].float().softmax(-1).cpu()
        mask_id = run.tokenizer.specials[MASK_TOKEN]
        guesses, filled = [], list(ids)
        for position, token in enumerate(ids):
            if token != mask_id:
                continue
            top = probs[position].topk(min(top_k, ordinary))
            guesses.append([(run.tokenizer.decode([int(i)]), float(p)) for p, i in zip(top.values, top.indices)])
            filled[position] = int(top.indices[0])
        return guesses, run.tokenizer.decode(filled)
