"""Sampling from a model: logits processing, a generator of new token ids with a KV cache, and the way from
those ids to text pieces (incremental UTF-8 decoding, stop strings).

The one place for generation, used by `gptkit sample`, `gptkit chat`, `gptkit serve` and `Run.generate` with
the settings of a `gptkit.sampling.SamplingConfig`. Temperature 0 means greedy; top-k, top-p and a repetition
penalty filter the logits. Prompts of different lengths are left-padded and carry a mask, so a batch gives
each row what it would get alone (while the padded batch fits the window). Context-full policy: the model
never sees more than `block_size` tokens; when the window is full it slides, keeping the last half block
(with a cache, the cache is recomputed from those); with or without a cache the same tokens come out. A
character can span several byte-level BPE tokens, so text pieces are emitted once they are valid UTF-8; text
that might be the start of a stop string is held back until it is known not to be. Prompts are the caller's.
"""

import codecs
from collections.abc import Iterable, Iterator

import torch

from gptkit.decode import DecodeStep, decode_step_for
from gptkit.errors import GptkitError
from gptkit.model import KVCache
from gptkit.sampling import DEFAULT_SAMPLING, SamplingConfig


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Scale by temperature and mask (to -inf) what top-k / top-p exclude. logits: (B, V) -> (B, V)."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1): the k-th largest logit
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        # Nucleus sampling (Holtzman et al. 2019): keep the smallest set of tokens whose probability reaches top_p.
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs  # probability of the tokens ranked above each one
        drop_sorted = mass_before >= top_p  # the top token always has 0 before it, so it is always kept
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def penalize_repeats(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al. 2019): logits of tokens already in `seen` (B, S) are divided by
    `penalty` when positive and multiplied when negative. logits: (B, V)."""
    scores = logits.gather(1, seen)  # (B, S)
    scores = torch.where(scores > 0, scores / penalty, scores * penalty)
    return logits.scatter(1, seen, scores)


def sample_next(
    logits: torch.Tensor,
    temperature: float = DEFAULT_SAMPLING.temperature,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token for each row. logits: (B, V) -> ids (B, 1)."""
    if temperature == 0:
        return torch.argmax(logits, dim=-1, keepdim=True)
    probs = torch.softmax(filter_logits(logits.float(), temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position of each token in its own row, counting only real (unpadded) tokens. mask: (B, T) -> (B, T)."""
    return (mask.long().cumsum(dim=1) - 1).clamp(min=0)


class _Window:
    """The tokens of a generation (prompt + new, with padding mask) and the model's view of them.

    The model sees idx[:, offset:], at most `block_size` tokens. When a new token would overflow that, the
    window slides: it keeps the last half block (and, with a cache, recomputes the cache from those). The
    same policy with or without a cache, so both give the same tokens. New ids are joined to `idx` only when
    something reads it (a slide, the repetition penalty, a step without the lean path): a decode step needs
    only the last one, and joining every token would cost a copy of the whole row each time.
    """

    def __init__(self, model, idx: torch.Tensor, mask: torch.Tensor, use_cache: bool, modules: list):
        self.model = model
        self._parts, self._mask = [idx], mask  # the prompt, then each new (B, 1) id until joined
        self.length, self.last = idx.size(1), idx[:, -1:]
        self.block_size = model.config.block_size
        self.offset = max(0, self.length - self.block_size)  # a long prompt: its last block
        self.padded = not bool(mask.all())  # without padding, positions and masks take the fast default path
        self.cache = None
        self.decode_step = None  # the lean path (gptkit.decode): the prompt into an empty cache, then a token at a time
        if use_cache:
            param = next(model.parameters())
            if not self.padded and DecodeStep.supports(model, modules):
                self.decode_step = decode_step_for(model, idx.size(0), modules)
                try:
                    self.cache = self.decode_step.new_cache(idx.size(0), param.device, param.dtype)
                except BaseException:  # e.g. out of memory: the step must not stay taken
                    self.decode_step.release()
                    raise
            else:
                self.cache = KVCache(model.config, idx.size(0), self.block_size, param.device, param.dtype)

    def close(self) -> None:
        """The generation has ended: its lean step (and the step's cache) may serve the next one."""
        if self.decode_step is not None:
            self.decode_step.release()

    @property
    def idx(self) -> torch.Tensor:
        """(B, length): the prompt and every new id."""
        if len(self._parts) > 1:
            self._parts = [torch.cat(self._parts, dim=1)]
        return self._parts[0]

    @property
    def mask(self) -> torch.Tensor:
        """(B, length) bool, False at padding."""
        return self._mask if self.padded else self._mask[:, :1].expand(-1, self.length)  # all True: a view

    def logits_for_next(self) -> torch.Tensor:
        """(B, V) logits for the token after the current ones."""
        if self.length - self.offset > self.block_size:  # full: slide, keeping the last half block
            self.offset = self.length - max(1, self.block_size // 2)
            if self.cache is not None:
                self.cache.reset()
        cached = self.cache.length if self.cache is not None else 0
        if self.decode_step is not None:  # all but the last token are cached, or none (the prompt, a slide)
            return self.decode_step(self.last if cached else self.idx[:, self.offset :], self.cache)
        new = self.idx[:, self.offset + cached :]  # the whole window without a cache; what is not cached with one
        if not self.padded:
            return self.model(new, cache=self.cache, last_only=True)[0][:, -1]
        mask = self._mask[:, self.offset :]
        positions = positions_from_mask(mask)[:, cached:]
        return self.model(new, cache=self.cache, positions=positions, key_mask=mask, last_only=True)[0][:, -1]

    def append(self, next_id: torch.Tensor) -> None:
        self._parts.append(next_id)
        self.length += 1
        self.last = next_id
        if self.padded:
            self._mask = torch.cat([self._mask, torch.ones_like(next_id, dtype=torch.bool)], dim=1)


def generate_tokens(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = DEFAULT_SAMPLING.temperature,
    top_k: int | None = DEFAULT_SAMPLING.top_k,
    top_p: float | None = DEFAULT_SAMPLING.top_p,
    repetition_penalty: float = DEFAULT_SAMPLING.repetition_penalty,
    seed: int | None = DEFAULT_SAMPLING.seed,
    attention_mask: torch.Tensor | None = None,
    use_cache: bool = True,
    vocab_limit: int | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the next token ids, (B, 1) each, `max_new_tokens` times.

    Args:
        model: a GPT (put in eval mode here).
        idx: (B, T) prompt ids on the model's device, T >= 1; left-padded when prompts differ in length.
        attention_mask: (B, T) bool, False at padding; None = no padding.
        seed: seeds a private generator, so the same seed gives the same text without touching global RNG.
        use_cache: keep keys/values of past tokens (fast); False recomputes the window at every step.
        vocab_limit: never pick ids at or above this (a model whose vocabulary outgrows its tokenizer's).
    """
    SamplingConfig(max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed=seed)  # checks them
    mask = torch.ones_like(idx, dtype=torch.bool) if attention_mask is None else attention_mask.to(torch.bool)
    if idx.dim() != 2 or idx.dtype != torch.long or mask.shape != idx.shape:
        raise GptkitError("generate: pass ids as a (B, T) int64 tensor (and attention_mask of the same shape)")
    if idx.size(1) == 0:
        raise GptkitError("generate: the prompt is empty; give at least one token")
    if not bool(mask[:, -1].all()):
        raise GptkitError("generate: pad prompts on the left; the last position of every row must be a real token")
    if int(idx.max()) >= model.config.vocab_size or int(idx.min()) < 0:
        raise GptkitError(f"generate: ids must be in [0, {model.config.vocab_size}), the model's vocabulary")
    generator = torch.Generator(device=idx.device).manual_seed(seed) if seed is not None else None
    was_training = model.training
    modules = list(model.modules())  # walked once: the modes here, the hooks in DecodeStep.supports
    in_training = any(m.training for m in modules)  # e.g. LoRA layers added to a model in eval mode
    if in_training:  # only then: setting every module's mode costs more than a small model's token
        model.eval()
    window = None
    try:
        window = _Window(model, idx, mask, use_cache, modules)
        for _ in range(max_new_tokens):
            with torch.inference_mode():  # faster than no_grad; the ids handed out are ordinary tensors
                logits = window.logits_for_next()  # (B, V)
                if vocab_limit is not None and vocab_limit < logits.size(-1):
                    logits[:, vocab_limit:] = float("-inf")
                if repetition_penalty != 1.0:  # pads count as the row's first real token, already in `seen`
                    first_real = window.idx.gather(1, window.mask.long().argmax(1, keepdim=True))
                    seen = torch.where(window.mask, window.idx, first_real)
                    logits = penalize_repeats(logits, seen, repetition_penalty)
                next_id = sample_next(logits, temperature, top_k, top_p, generator)  # (B, 1)
                window.append(next_id)
            yield next_id.clone()
    finally:
        if window is not None:
            window.close()
        if in_training:
            model.train(was_training)


# -- from ids to text ---------------------------------------------------------------------------------


def decode_pieces(tokenizer, ids: Iterable[int]) -> Iterator[str]:
    """Text pieces for a stream of token ids; invalid bytes become U+FFFD, as `decode` does."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for token_id in ids:
        piece = decoder.decode(tokenizer.decode_bytes([token_id]))
        if piece:
            yield piece
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def _held_back(text: str, stops: list[str]) -> int:
    """Length of the longest end of `text` that is the beginning of a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def cut_at_stops(pieces: Iterable[str], stops: list[str]) -> Iterator[str]:
    """Pass `pieces` through until the text contains a stop string; stop there (closing the source)."""
    stops = [s for s in stops if s]
    if not stops:
        yield from pieces
        return
    pending = ""
    try:
        for piece in pieces:
            pending += piece
            found = [at for at in (pending.find(s) for s in stops) if at >= 0]
            if found:
                if min(found):
                    yield pending[: min(found)]
                return
            keep = _held_back(pending, stops)
            if len(pending) > keep:
                yield pending[: len(pending) - keep]
                pending = pending[len(pending) - keep :]
        if pending:
            yield pending
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
