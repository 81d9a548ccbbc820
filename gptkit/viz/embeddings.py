"""Token embeddings in 2-D: the rows of `wte` projected on their first two principal components, labelled.

Tokens that the model uses alike land near each other (for characters: vowels, digits, upper vs lower
case). Entry point: `embeddings_figure(run, labels=)`.
"""

import torch

from gptkit.errors import ArgumentError
from gptkit.run import Run
from gptkit.viz.figure import house_style, new_figure, token_label
from gptkit.viz.tokens import token_texts


def principal_components(weights: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, k) coordinates of the centred rows on their top-k principal axes, and the variance share of each."""
    centred = weights.float() - weights.float().mean(0)
    _, singular, axes = torch.linalg.svd(centred, full_matrices=False)
    share = singular**2 / (singular**2).sum()
    coords = centred @ axes[:k].T
    # An SVD axis may come out as +v or -v; fix the sign so the same weights always give the same picture.
    signs = torch.sign(coords.gather(0, coords.abs().argmax(0, keepdim=True))).squeeze(0)
    return coords * signs, share[:k]


def labelled_ids(run: Run, vocab: int, labels: int) -> list[int]:
    """Which tokens get a text label: all of a small vocabulary; for byte-level BPE the first merges (ids
    from 256 on), the most frequent pairs of the tokenizer's training text."""
    if vocab <= labels:
        return list(range(vocab))
    start = 256 if getattr(run.tokenizer, "merges", None) else 0
    return list(range(start, min(start + labels, vocab)))


@house_style
@torch.no_grad()
def embeddings_figure(run: Run, *, labels: int = 120):
    if labels < 0:
        raise ArgumentError("labels", "must be >= 0 (0 = no text labels)", labels)
    weights = run.model.transformer.wte.weight.detach().cpu()
    vocab = weights.size(0)
    if run.tokenizer is not None:
        vocab = min(vocab, run.tokenizer.vocab_size)  # rows past the tokenizer (padding) carry no token
    coords, share = principal_components(weights[:vocab])
    figure = new_figure(8, 7)
    axes = figure.add_subplot()
    axes.scatter(coords[:, 0], coords[:, 1], s=8, alpha=0.35, color="C0")
    if run.tokenizer is not None:
        chosen = labelled_ids(run, vocab, labels)
        for token_id, text in zip(chosen, token_texts(run.tokenizer, chosen)):
            x, y = coords[token_id].tolist()
            axes.annotate(token_label(text), (x, y), fontsize=7, ha="center", va="bottom")
    axes.set_xlabel(f"principal component 1 ({100 * share[0]:.1f}% of variance)")
    axes.set_ylabel(f"principal component 2 ({100 * share[1]:.1f}% of variance)")
    axes.grid(alpha=0.3)
    axes.set_title(f"{run.run_dir.name}: {vocab} token embeddings (PCA)")
    return figure
