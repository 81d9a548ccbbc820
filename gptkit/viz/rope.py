"""Rotary position embedding, drawn from the model's own functions (`rope_tables`, `apply_rope`).

Three panels: the wavelength of each rotated pair (fast pairs see nearby order, slow ones far context); the
cosine of each pair's angle over positions; and the relative-position effect: the dot product of a query at
position m and a key at position n depends only on m - n, and for equal vectors it decays with distance.
Entry point: `rope_figure(dim=, theta=, length=)`.
"""

import math

import torch

from gptkit.errors import ArgumentError
from gptkit.model import apply_rope, rope_tables
from gptkit.viz.figure import house_style, new_figure


def relative_scores(dim: int, theta: float, length: int, offset: int) -> torch.Tensor:
    """q . k with q = k = ones(dim) / sqrt(dim), q at position `offset + d` and k at `offset`, for d in
    0..length-1 (1.0 at d = 0)."""
    cos, sin = rope_tables(dim, offset + length, theta)
    vector = torch.ones(1, 1, 1, dim) / math.sqrt(dim)
    key = apply_rope(vector, cos[offset : offset + 1], sin[offset : offset + 1])  # (1, 1, 1, dim)
    queries = apply_rope(vector.expand(1, 1, length, dim), cos[offset:], sin[offset:])  # (1, 1, length, dim)
    return (queries * key).sum(-1).flatten()


@house_style
def rope_figure(*, dim: int = 64, theta: float = 10000.0, length: int = 256):
    if dim < 2 or dim % 2:
        raise ArgumentError("dim", "RoPE rotates pairs, so the head size must be even and at least 2", dim)
    if theta <= 1:
        raise ArgumentError("theta", "the base must be greater than 1 (10000 in RoFormer and GPT-NeoX)", theta)
    if not 2 <= length <= 65536:
        raise ArgumentError("length", "show between 2 and 65536 positions", length)
    pairs = torch.arange(dim // 2)
    inv_freq = 1.0 / theta ** (2 * pairs.float() / dim)
    cos, _ = rope_tables(dim, length, theta)  # (length, dim/2)

    figure = new_figure(13, 4.2)
    waves, table, relative = figure.subplots(1, 3)
    waves.semilogy(pairs, 2 * math.pi / inv_freq, marker=".")
    waves.axhline(length, color="grey", linestyle="--", linewidth=1, label=f"{length} positions")
    waves.set_xlabel("pair index i (dims i and i + dim/2)")
    waves.set_ylabel("wavelength 2π/θ_i (tokens)")
    waves.set_title("rotation frequencies")
    waves.legend(fontsize=8)

    image = table.imshow(cos.T.numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
    table.set_xlabel("position m")
    table.set_ylabel("pair index i")
    table.set_title("cos(m θ_i)")
    figure.colorbar(image, ax=table)

    distance = torch.arange(length)
    for offset, style in ((0, "-"), (length // 2, "--")):
        scores = relative_scores(dim, theta, length, offset)
        relative.plot(distance, scores, style, label=f"key at position {offset}")
    relative.set_xlabel("distance m - n (tokens)")
    relative.set_ylabel("q·k (q = k, unit length)")
    relative.set_title("depends only on distance")
    relative.legend(fontsize=8)
    relative.grid(alpha=0.3)
    figure.suptitle(f"RoPE, head size {dim}, θ = {theta:g}")
    return figure
