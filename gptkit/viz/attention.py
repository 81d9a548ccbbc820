"""Attention maps: which tokens each position of a prompt looks at, one heat map per head.

Entry points: `attention_weights(run, prompt)` -> (tokens, [per layer (n_head, T, T)]) and
`attention_figure(run, prompt, layer=, head=)`. Row t is query position t; its weights sum to 1, over keys
0..t in a causal model (the mask zeroes the rest), over all keys in a masked LM (model.causal=false).
"""

import torch

from gptkit.errors import ArgumentError, GptkitError
from gptkit.model import recording_attention
from gptkit.run import Run
from gptkit.viz.figure import house_style, new_figure, token_label
from gptkit.viz.tokens import token_texts


@torch.no_grad()
def attention_weights(run: Run, prompt: str, layers=None) -> tuple[list[str], list[torch.Tensor]]:
    """The prompt's tokens (as text) and the attention weights of every layer (or of `layers`, in order),
    (n_head, T, T) each, on the CPU."""
    if not prompt:
        raise ArgumentError("prompt", "give some text to look at (attention of an empty prompt is empty)")
    if run.config.model.arch == "bigram":
        raise GptkitError(f"{run.run_dir} is a bigram model: it has no attention (each token reads its own row)")
    ids = run.encode_prompt(prompt)
    idx = torch.tensor([ids], device=run.device)
    run.model.eval()
    with recording_attention(run.model, layers) as maps:
        run.model(idx)
    return token_texts(run.tokenizer, ids), [m[0].float().cpu() for m in maps]


def pick(index: int, count: int, what: str, argument: str) -> int:
    """`index` (the value of `argument`) into `count` items (negative counts from the end), or a clear error."""
    if not -count <= index < count:
        raise ArgumentError(argument, f"the model has {count} {what} (0..{count - 1}, or -1 for the last)", index)
    return index % count


def tick_step(count: int) -> int:
    return max(1, -(-count // 40))  # at most ~40 labels per axis stay readable


@house_style
def attention_figure(run: Run, prompt: str, *, layer: int = -1, head: int | None = None):
    """Heat maps of one layer's heads (or one head) for `prompt`."""
    n_layer = run.model.config.n_layer
    layer = pick(layer, n_layer, "layers", "layer")
    tokens, (weights,) = attention_weights(run, prompt, [layer])  # (n_head, T, T)
    heads = list(range(weights.size(0)))
    if head is not None:
        heads = [pick(head, len(heads), "heads", "head")]
    T = len(tokens)
    columns = min(len(heads), 4)
    rows = -(-len(heads) // columns)
    size = min(max(2.2, T * 0.16), 6.0)  # inches per map: room for the token labels
    figure = new_figure(columns * size + 1.2, rows * size + 0.8)
    grid = figure.subplots(rows, columns, squeeze=False)
    # Row 0 of a causal map is always 1.0 (the first token sees only itself); scaling by it would leave
    # every other weight near black.
    top = float(weights[heads][:, 1:].max()) if T > 1 else 1.0
    labels = [token_label(t) for t in tokens]
    step = tick_step(T)
    image = None
    for slot, axes in enumerate(grid.flat):
        if slot >= len(heads):
            axes.axis("off")
            continue
        h = heads[slot]
        image = axes.imshow(weights[h].numpy(), cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest")
        axes.set_title(f"head {h}", fontsize=9)
        axes.set_xticks(range(0, T, step), labels[::step], rotation=90, fontsize=7)
        axes.set_yticks(range(0, T, step), labels[::step], fontsize=7)
        axes.set_xlabel("attends to (key)", fontsize=8)
        if slot % columns == 0:
            axes.set_ylabel("token (query)", fontsize=8)
    figure.colorbar(image, ax=grid, shrink=0.8, label="attention weight")
    kind = "" if run.model.config.causal else "bidirectional "
    figure.suptitle(f"{run.run_dir.name}: {kind}attention of layer {layer} (of 0..{n_layer - 1}), {T} tokens")
    return figure
