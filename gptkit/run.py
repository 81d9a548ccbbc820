"""A trained run, loaded for use: `gptkit.load(run_dir)` -> `Run` with `.generate`, `.stream`, `.generate_ids`,
and `.chat` for a chat model.

`Run` holds `model` (a GPT in eval mode), `tokenizer` and `config` (the RunConfig it was trained with), and
turns text prompts into text through `gptkit.generate` (a character split across tokens is emitted whole;
stop strings end the text), with the settings of a `SamplingConfig`. It does not train; see `gptkit.train`.
"""

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from gptkit.chat.template import CHAT_TOKENS, conversation_from, fitted_prompt, is_chat_tokenizer
from gptkit.checkpoint import BEST_FILE, WEIGHTS_FILE, load_model, read_run_config
from gptkit.errors import ArgumentError, GptkitError
from gptkit.generate import cut_at_stops, decode_pieces, generate_tokens
from gptkit.lora import merge_lora
from gptkit.model import GPT
from gptkit.objectives import Objective, objective_for
from gptkit.quantize import check_quantize, quantize_model
from gptkit.runtime import pick_device
from gptkit.sampling import DEFAULT_SAMPLING, SamplingConfig
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer
from gptkit.tokenizer.char import UnknownCharacterError

WEIGHT_CHOICES = {"last": WEIGHTS_FILE, "best": BEST_FILE}


class Run:
    """A model with its tokenizer and config, ready to generate text."""

    def __init__(self, run_dir: Path, model: GPT, tokenizer, config, device: torch.device):
        self.run_dir = run_dir
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.device = device

    def encode_prompt(self, prompt: str) -> list[int]:
        """Prompt ids cropped to the last `block_size` tokens (with a warning); an empty prompt starts at a newline."""
        if self.tokenizer is None:
            raise GptkitError(
                f"{self.run_dir} has no tokenizer (its weights were imported alone); use run.generate_ids, or "
                "import it again with one (import_hf(..., tokenizer=PATH), `gptkit import ... --tokenizer PATH`)"
            )
        if prompt:
            try:
                ids = self.tokenizer.encode(prompt)
            except UnknownCharacterError as err:
                raise ArgumentError(
                    "prompt",
                    f"character {err.char!r} (U+{ord(err.char):04X}) is not in the vocabulary of {self.run_dir}; "
                    "remove it from the prompt",
                ) from None
            except GptkitError as err:
                raise ArgumentError("prompt", str(err)) from None
        else:  # nothing to condition on: start from a newline, as nanoGPT does, or token 0 if there is none
            try:
                ids = self.tokenizer.encode("\n")
            except GptkitError:
                ids = [0]
        block_size = self.model.config.block_size
        if len(ids) > block_size:
            warnings.warn(
                f"the prompt is {len(ids)} tokens, longer than block_size={block_size}; using its last {block_size}",
                stacklevel=3,
            )
            ids = ids[-block_size:]
        return ids

    def stream(
        self,
        prompt: str,
        max_new_tokens: int | None = None,
        *,
        sampling: SamplingConfig = DEFAULT_SAMPLING,
        use_cache: bool = True,
        **options,
    ) -> Iterator[str]:
        """Yield the continuation of `prompt` piece by piece as it is generated (valid UTF-8 text only).

        Args:
            max_new_tokens: how many tokens at most (default: the sampling settings', 200).
            sampling: the settings (`gptkit.sampling.SamplingConfig`); `options` change single fields of it:
                `temperature` (0 = greedy), `top_k`, `top_p`, `repetition_penalty`, `stop` (a string or list
                that ends the text, not included), `seed` (reproducible text).
            use_cache: keep past keys/values (fast); False recomputes the window at every step.
        Arguments and the prompt are checked here, before the first piece is asked for.
        """
        settings = _settings(sampling, max_new_tokens, options)
        self.check_generates()
        return self.stream_ids(self.encode_prompt(prompt), settings, use_cache=use_cache)

    @property
    def objective(self) -> Objective:
        """What the run was trained to do (`gptkit.objectives`): continue text, fill in masks, ..."""
        return objective_for(self.config)

    def check_generates(self) -> None:
        """Refuse to continue text with a model whose objective does not (a masked LM fills in blanks)."""
        self.objective.check_generates(self.run_dir)

    def stream_ids(
        self,
        ids: list[int],
        sampling: SamplingConfig = DEFAULT_SAMPLING,
        *,
        use_cache: bool = True,
        stop_ids: frozenset[int] = frozenset(),
        new_ids: list[int] | None = None,
        keep_going: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Like `stream`, from prompt ids already encoded (at most block_size of them).

        Generation also ends at a token of `stop_ids`, which is not part of the text (a chat reply ends at
        `<|im_end|>` as a token, whatever its text). For servers: `new_ids` (a list) receives every generated id
        as it is made, and `keep_going` is asked before each new token; when it answers False, generation ends
        there (a cancelled or late request).
        """
        self.check_generates()
        idx = torch.tensor([ids], dtype=torch.long, device=self.device)
        limit = self.tokenizer.vocab_size if self.tokenizer is not None else None  # the model's may be larger
        tokens = generate_tokens(
            self.model,
            idx,
            sampling.max_new_tokens,
            use_cache=use_cache,
            vocab_limit=limit,
            **sampling.token_options(),
        )

        def next_ids() -> Iterator[int]:
            for token in tokens:
                token_id = int(token[0, 0])
                if new_ids is not None:
                    new_ids.append(token_id)
                if token_id in stop_ids:
                    tokens.close()
                    return
                yield token_id
                if keep_going is not None and not keep_going():
                    tokens.close()
                    return

        return cut_at_stops(decode_pieces(self.tokenizer, next_ids()), list(sampling.stop))

    def generate(self, prompt: str, max_new_tokens: int | None = None, **sampling) -> str:
        """The continuation of `prompt` (without the prompt itself), as one string. See `stream` for options."""
        return "".join(self.stream(prompt, max_new_tokens, **sampling))

    @property
    def is_chat(self) -> bool:
        """Whether the run speaks the chat template (it was fine-tuned on conversations: `--preset sft`)."""
        return self.tokenizer is not None and is_chat_tokenizer(self.tokenizer)

    @property
    def chat_stop_ids(self) -> frozenset[int]:
        """The tokens that end a reply: the model closing its turn, or starting another one."""
        return frozenset(self.tokenizer.specials[token] for token in CHAT_TOKENS) if self.is_chat else frozenset()

    def chat_prompt(self, messages, max_new_tokens: int) -> tuple[list[int], int]:
        """Prompt ids for the assistant's reply to `messages`, with the oldest turns dropped (the system message
        kept) to leave room for `max_new_tokens` (at most half the window); and how many messages were dropped."""
        if not self.is_chat:
            raise GptkitError(
                f"{self.run_dir} is not a chat model (its tokenizer has no chat template tokens); fine-tune it on "
                "conversations: `gptkit prepare --chat FILE --tokenizer RUN --out DATA` then "
                "`gptkit train --data DATA --init-from RUN --preset sft --out CHAT_RUN`"
            )
        block_size = self.model.config.block_size
        conversation = conversation_from(messages)
        return fitted_prompt(conversation, self.tokenizer, block_size - min(max_new_tokens, block_size // 2))

    def stream_chat(
        self, messages, max_new_tokens: int | None = None, *, sampling: SamplingConfig = DEFAULT_SAMPLING, **options
    ) -> Iterator[str]:
        """Yield the assistant's reply to `messages` (`[{"role": "user", "content": "..."}, ...]`) as it is
        generated; it ends where the model closes its turn (`<|im_end|>`). Options as for `stream`."""
        settings = _settings(sampling, max_new_tokens, options)
        ids, _ = self.chat_prompt(messages, settings.max_new_tokens)
        return self.stream_ids(ids, settings, stop_ids=self.chat_stop_ids)

    def chat(self, messages, max_new_tokens: int | None = None, **sampling) -> str:
        """The assistant's reply to `messages`, as one string. See `stream_chat`."""
        return "".join(self.stream_chat(messages, max_new_tokens, **sampling))

    def generate_ids(
        self,
        idx: torch.Tensor,
        max_new_tokens: int | None = None,
        *,
        sampling: SamplingConfig = DEFAULT_SAMPLING,
        attention_mask: torch.Tensor | None = None,
        use_cache: bool = True,
        **options,
    ) -> torch.Tensor:
        """For your own tokenizer: (B, T) prompt ids -> (B, max_new_tokens) new ids.

        Takes `stream`'s sampling settings except `stop` (a text-level option), plus `attention_mask` (B, T) for
        left-padded prompts of different lengths; `gptkit.generate.generate_tokens` yields them one at a time.
        """
        self.check_generates()
        settings = _settings(sampling, max_new_tokens, options)
        if settings.stop:
            raise GptkitError(
                "generate_ids: `stop` works on text; use run.stream / run.generate, or stop on ids yourself"
            )
        idx = idx.to(self.device)
        mask = None if attention_mask is None else attention_mask.to(self.device)
        tokens = generate_tokens(
            self.model,
            idx,
            settings.max_new_tokens,
            attention_mask=mask,
            use_cache=use_cache,
            **settings.token_options(),
        )
        new = list(tokens)
        return torch.cat(new, dim=1) if new else idx.new_zeros((idx.size(0), 0))


def _settings(sampling: SamplingConfig, max_new_tokens: int | None, options: dict) -> SamplingConfig:
    """`sampling` with the keyword options of a call (and its positional max_new_tokens) applied, checked."""
    if max_new_tokens is not None:
        options = {**options, "max_new_tokens": max_new_tokens}
    return sampling.with_changes(**options)


def load_run(run_dir, *, weights: str = "last", device: str = "auto", quantize: str = "none") -> Run:
    """Load `run_dir` (written by `gptkit train`) with its `last` or `best` (lowest val loss) weights (a LoRA
    run: its base run's weights with its adapters merged in);
    `quantize="int8"` holds the linear layers' weights in int8 for faster CPU generation (`gptkit.quantize`)."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if weights not in WEIGHT_CHOICES:
        raise ArgumentError("weights", f"choose one of {', '.join(WEIGHT_CHOICES)}", weights)
    tokenizer = load_tokenizer(run_dir) if (run_dir / TOKENIZER_FILE).exists() else None  # weights-only imports
    target = pick_device(device)
    check_quantize(quantize, target)
    if weights == "best" and not (run_dir / BEST_FILE).exists():
        raise GptkitError(
            f"{run_dir}: no {BEST_FILE} (it is written when the val loss improves after step 0; runs without a "
            "val split have none); use weights='last' (--weights last)"
        )
    model = load_model(run_dir, config, WEIGHT_CHOICES[weights])
    if config.lora.r:  # a LoRA run: its base with the adapters folded in, as fast as any model of its size
        model = merge_lora(model)
        config.model = model.config  # an adapted head is untied now
    model = quantize_model(model.to(target).eval(), quantize, target)
    return Run(run_dir, model, tokenizer, config, target)
