"""gptkit: build a GPT language model from scratch on your own text, and use it.

Entry points: `gptkit.train(out_dir, data=..., preset=...)` to train (or `resume=True` to continue),
`gptkit.load(run_dir)` for a trained run (`.generate`, `.stream`, `.model`, `.tokenizer`, `.config`) and
`gptkit.load_tokenizer(path)`; `gptkit.SamplingConfig` holds the sampling settings. The command line is
`gptkit --help`. Heavy modules (torch) are imported on first use so that `import gptkit` and `gptkit --help`
stay instant.
"""

from gptkit.errors import GptkitError
from gptkit.sampling import SamplingConfig

__version__ = "0.1.0"
__all__ = ["GptkitError", "SamplingConfig", "load", "load_tokenizer", "train", "__version__"]


def __getattr__(name: str):
    """`gptkit.train` (a package you can call, see `gptkit.train`) is imported on first use."""
    if name == "train":
        import importlib

        return importlib.import_module("gptkit.train")
    raise AttributeError(f"module 'gptkit' has no attribute {name!r}")


def load(run_dir, *, weights: str = "last", device: str = "auto", quantize: str = "none"):
    """Load a trained run directory for use: see `gptkit.run.Run` (`quantize="int8"`: `gptkit.quantize`)."""
    from gptkit.run import load_run

    return load_run(run_dir, weights=weights, device=device, quantize=quantize)


def load_tokenizer(path):
    """Load a tokenizer JSON file (or a prepared data / run directory holding `tokenizer.json`)."""
    from gptkit.tokenizer import load_tokenizer as _load

    return _load(path)
