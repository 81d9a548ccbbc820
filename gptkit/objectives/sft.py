"""Supervised fine-tuning on conversations: learn the assistant's replies, not the users' messages.

Batches are rows of whole conversations from chat data (`gptkit prepare --chat`, see `gptkit.data.chat`);
only assistant content and its closing `<|im_end|>` are targets, so the loss is the mean over the assistant's
tokens. Plain text datasets may be mixed in by weight (every token learned): fine-tuning forgets the
pretraining text, and mixing some of it back is the remedy. `gptkit eval` on chat data reports the loss over
assistant tokens only. A trained run is a chat model: `gptkit chat`, `run.chat`.
"""

import math

import torch

from gptkit.chat.template import chat_tokenizer
from gptkit.data.chat import ChatRows, is_chat_data
from gptkit.data.dataset import open_dataset
from gptkit.errors import ArgumentError, GptkitError
from gptkit.evaluate import EvalResult, evaluate_text
from gptkit.objectives.causal import CausalLM
from gptkit.paths import shown
from gptkit.tokenizer import load_tokenizer
from gptkit.tokenizer.tables import token_pieces


class ChatSFT(CausalLM):
    name = "sft"

    def training_tokenizer(self, tokenizer):
        return chat_tokenizer(tokenizer)  # chat data has the chat tokens already; plain text data gains them

    def batch_source(self, dataset, block_size: int):
        return ChatRows(dataset, block_size) if is_chat_data(dataset.path) else dataset

    def check_sources(self, sources: list) -> None:
        self.chat_sources = [s for s in sources if isinstance(s, ChatRows)]
        if not self.chat_sources:
            raise GptkitError(
                "`train.objective`=sft needs chat data: prepare conversations (`gptkit prepare --chat FILE --out DIR`, "
                "or gptkit.data.chat.prepare_chat) and train on that folder (plain text may be mixed in beside it)"
            )

    @staticmethod
    def learned_tokens(batch) -> torch.Tensor:
        """The assistant's tokens among a batch's targets: what tokens/s counts for chat fine-tuning."""
        return (batch[1] >= 0).sum()

    chat_sources: list = []  # the packed chat datasets, once `batch_plan` has made them

    def describe(self) -> list[str]:
        return ["sft: loss on assistant replies only", *(rows.describe() for rows in self.chat_sources)]

    def evaluate(self, run, *, data=(), texts=(), split="val", max_tokens=None, context=None, whole_word=None):
        results = []
        for path in data:
            if is_chat_data(path):
                results.append(evaluate_chat(run, path, split=split))
            else:
                results += super().evaluate(run, data=[path], split=split, max_tokens=max_tokens, context=context)
        return results + [evaluate_text(run, t, max_tokens=max_tokens, context=context) for t in texts]

    def next_step(self, run_dir) -> str:
        return f"chat with: gptkit chat {run_dir}"


@torch.no_grad()
def evaluate_chat(run, path, *, split: str = "val", batch_size: int = 16) -> EvalResult:
    """Mean loss over the assistant tokens of every conversation of a chat dataset's `split`."""
    block = run.model.config.block_size
    dataset = open_dataset(path, "path", flag="--data")
    if load_tokenizer(dataset.path).to_dict() != run.tokenizer.to_dict():
        problem = f"prepared with another tokenizer than {run.run_dir}; prepare it with `--tokenizer {run.run_dir}`"
        raise ArgumentError("path", problem, shown(path), flag="--data")
    rows = ChatRows(dataset, block)
    if not rows.num_rows(split):
        raise GptkitError(f"{shown(path)}: no {split} conversations to evaluate on")
    run.model.eval()
    total, count, spelled = 0.0, 0, 0
    lengths = torch.tensor([len(p or b"") for p in token_pieces(run.tokenizer, run.model.config.vocab_size)])
    for x, y in rows.all_rows(split, batch_size, run.device):
        logits, _ = run.model(x)
        picked = y >= 0
        losses = torch.nn.functional.cross_entropy(logits[picked].float(), y[picked], reduction="sum")
        total += float(losses)
        count += int(picked.sum())
        spelled += int(lengths[y[picked].cpu()].sum())
    loss = total / max(count, 1)
    bits_per_byte = total / math.log(2) / max(spelled, 1)
    cut = rows.truncated.get(split, 0)  # conversations longer than a row: scored on what fits
    name = f"{shown(path)} ({split}, assistant tokens{f', {cut} cut' if cut else ''})"
    return EvalResult(name, count, spelled, loss, math.exp(loss), bits_per_byte, block)
