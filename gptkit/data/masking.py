"""The masked-language-modelling recipe of BERT (Devlin et al. 2019, section 3.1 and appendix C.2).

Of the real (non-pad) tokens, a share `prob` (0.15) is selected; of those, `mask` (0.8) become `<|mask|>`,
`random` (0.1) a random ordinary token, and the rest stay as they are. The model is scored only on the
selected positions: targets hold the original id there and -1 (ignored by the loss) everywhere else, pads
included. With `whole_word`, whole words are selected instead of tokens (every piece of a word together),
so a word cannot be read off its own unmasked pieces. Entry points: `MaskingRecipe`, `word_edges_table`,
`mask_tokens`.
"""

from dataclasses import dataclass

import torch

from gptkit.tokenizer.tables import token_pieces, vocabulary_texts


@dataclass(frozen=True)
class MaskingRecipe:
    prob: float = 0.15
    mask: float = 0.8
    random: float = 0.1
    whole_word: bool = False

    @classmethod
    def of(cls, settings) -> "MaskingRecipe":
        """The recipe of a run's `[mlm]` settings (`gptkit.config.MaskedLMConfig`)."""
        return cls(settings.prob, settings.mask, settings.random, settings.whole_word)


def word_edges_table(tokenizer, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token id: does its text start with a letter or digit; can a word go on after it (it ends with
    a letter or digit, or it is a single space, which belongs to the word after it).

    A token continues the previous token's word when it starts with a letter/digit and a word can go on
    after the previous token (" hel" + "lo"; " " + "h"); anything else (punctuation, a newline, a special
    token) starts a new word. That is the GPT-2/GPT-4 pre-split word (" hello"), for char tokenizers too,
    except that long numbers count as one word."""
    starts = torch.zeros(vocab_size, dtype=torch.bool)
    ends = torch.zeros(vocab_size, dtype=torch.bool)
    for token_id, text in enumerate(vocabulary_texts(tokenizer, vocab_size)):
        if text:
            starts[token_id] = text[0].isalnum()
            ends[token_id] = text[-1].isalnum() or text == " "
    return starts, ends


def word_ids(ids: torch.Tensor, real: torch.Tensor, edges: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(B, T) word number of each token, counted over the whole batch (pads get their own numbers)."""
    starts_alnum, ends_alnum = edges
    continues = starts_alnum[ids] & torch.nn.functional.pad(ends_alnum[ids][:, :-1], (1, 0), value=False)
    continues &= real
    return torch.cumsum((~continues).flatten().long(), 0).view(ids.shape)


def mask_tokens(
    ids: torch.Tensor,
    real: torch.Tensor,
    recipe: MaskingRecipe,
    *,
    mask_id: int,
    replacement_ids: torch.Tensor,
    generator: torch.Generator,
    edges: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for ids (B, T) whose real tokens are `real` (B, T).

    Random tokens are drawn uniformly from `replacement_ids` (the ordinary tokens: no `<|endoftext|>` or
    other special). At least one real token of the batch is selected, so the loss is always defined."""
    if recipe.whole_word:
        words = word_ids(ids, real, edges)
        chosen_words = torch.rand(int(words.max()) + 1, generator=generator) < recipe.prob
        selected = chosen_words[words] & real
    else:
        selected = (torch.rand(ids.shape, generator=generator) < recipe.prob) & real
    if not selected.any():
        flat = torch.flatnonzero(real.flatten())
        selected.view(-1)[flat[torch.randint(len(flat), (1,), generator=generator)]] = True
    action = torch.rand(ids.shape, generator=generator)
    to_mask = selected & (action < recipe.mask)
    to_random = selected & (action >= recipe.mask) & (action < recipe.mask + recipe.random)
    inputs = ids.clone()
    inputs[to_mask] = mask_id
    draws = torch.randint(len(replacement_ids), (int(to_random.sum()),), generator=generator)
    inputs[to_random] = replacement_ids[draws]
    targets = torch.where(selected, ids, torch.full_like(ids, -1))
    return inputs, targets


def ordinary_ids(tokenizer, vocab_size: int) -> torch.Tensor:
    """The ids below `vocab_size` that are not special tokens: what a random replacement may be."""
    return torch.tensor([i for i, piece in enumerate(token_pieces(tokenizer, vocab_size)) if piece is not None])


def character_lengths(tokenizer, vocab_size: int) -> torch.Tensor:
    """Characters each token id spells (0 for special tokens): the unit to compare tokenizers by."""
    return torch.tensor([len(text or "") for text in vocabulary_texts(tokenizer, vocab_size)])
