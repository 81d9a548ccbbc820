"""Int8 weights for faster generation on the CPU (opt-in: `gptkit.load(run, quantize="int8")`, `--quantize`).

Decoding one token at a time reads every weight once per token, so on a 124M model the time goes to moving
~500 MB of float32 weights through memory. `quantize_model` replaces each `nn.Linear` (the LM head included,
which on GPT-2 is a third of the weights) by an `Int8Linear`: weights rounded to int8 with one scale per output
row (symmetric, so the error of each weight is at most half its row's scale), activations quantized per call
from their own range, and the product taken by PyTorch's fbgemm/oneDNN int8 kernels (`quantized::
linear_dynamic`). Embeddings, norms and attention stay float32. The cost in perplexity is measured in
docs/benchmarks.md; `gptkit eval --quantize int8` measures it on your own run and data.
The model is for inference only afterwards (no gradients, no saving).
"""

import warnings

import torch
import torch.nn as nn

from gptkit.errors import ArgumentError, GptkitError

QUANTIZE_CHOICES = ("none", "int8")


class Int8Linear(nn.Module):
    """y = x W^T + b with W held as int8 (per-row scales) and x quantized to 8 bits on each call."""

    def __init__(self, linear: nn.Linear, counted: bool = True):
        super().__init__()
        # The parameters this layer stands for, for `GPT.num_params` (its int8 weights are no nn.Parameter);
        # 0 for a head tied to the embedding, whose float weights are still counted there.
        self.parameters_held = linear.weight.numel() + (linear.bias.numel() if linear.bias is not None else 0)
        self.parameters_held *= counted
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12)  # one per output row: its largest maps to 127
        zero_points = torch.zeros(weight.size(0), dtype=torch.long)
        bias = None if linear.bias is None else linear.bias.detach().float()
        with warnings.catch_warnings():  # PyTorch marks quantized-tensor creation deprecated, the kernels not
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight, scales.double(), zero_points, 0, torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(qweight, bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # Without VNNI, x86 kernels add pairs of 8-bit products in 16 bits, which can saturate: 7-bit activations
        # avoid that (PyTorch's own default for this backend), at some precision.
        self.reduce_range = not torch.cpu._is_vnni_supported() if hasattr(torch.cpu, "_is_vnni_supported") else True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).float()
        y = torch.ops.quantized.linear_dynamic(flat, self._packed, self.reduce_range)
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def check_quantize(mode: str, device: torch.device) -> None:
    """Refuse a mode this build or device cannot run, before any weights are read."""
    if mode not in QUANTIZE_CHOICES:
        raise ArgumentError("quantize", f"choose one of {', '.join(QUANTIZE_CHOICES)}", mode)
    if mode == "int8" and device.type != "cpu":
        raise ArgumentError(
            "quantize",
            f"int8 weights run on the CPU only, and this run is on {device}; load it with device='cpu'",
            mode,
        )
    if mode == "int8" and not hasattr(torch.ops.quantized, "linear_dynamic"):
        raise GptkitError(f"quantize='int8': this PyTorch ({torch.__version__}) has no int8 linear kernels")


def quantize_model(model: nn.Module, mode: str, device: torch.device) -> nn.Module:
    """`model` with its linear layers in `mode` ("none": unchanged; "int8": `Int8Linear`, CPU only)."""
    check_quantize(mode, device)
    if mode == "none":
        return model
    model.requires_grad_(False)
    occurrences: dict[int, int] = {}  # a weight seen twice is tied (the LM head and the token embedding)
    for _, param in model.named_parameters(remove_duplicate=False):
        occurrences[id(param)] = occurrences.get(id(param), 0) + 1
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear(child, counted=occurrences[id(child.weight)] == 1))
    return model
