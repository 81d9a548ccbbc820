"""Export a run as one GGUF file that llama.cpp (and Ollama, LM Studio, llama-cpp-python) runs as gptkit does.

`tensors.py` picks llama.cpp's architecture (gpt2 or llama) and lays out the weights, `vocab.py` writes the
tokenizer in a form llama.cpp tokenizes identically; this module writes the file with the `gguf` package
(`pip install gptkit[gguf]`), atomically. A LoRA run is exported merged. A chat run carries its ChatML template.
Entry point: `export_gguf`.
"""

from pathlib import Path

import numpy as np

from gptkit.atomic import replacing
from gptkit.chat.template import JINJA_TEMPLATE, is_chat_tokenizer
from gptkit.checkpoint import load_model, read_run_config
from gptkit.errors import ArgumentError, GptkitError
from gptkit.gguf_export.tensors import add_metadata, gguf_architecture, gguf_tensors
from gptkit.gguf_export.vocab import gguf_vocab
from gptkit.lora import merge_lora
from gptkit.paths import shown
from gptkit.tokenizer import TOKENIZER_FILE, load_tokenizer

OUTTYPES = ("f32", "f16", "q8_0")
GGUF_MAGIC = b"GGUF"  # the first bytes of every GGUF file: only such a file is replaced
Q8_BLOCK = 32  # q8_0 quantizes runs of 32 numbers along a row; other rows stay f16


def export_gguf(run_dir, out_file, *, outtype: str = "f32", weights: str = "last", echo=print) -> Path:
    """Write `out_file` (a .gguf) for the run; nothing is left behind on any error."""
    from gptkit.run import WEIGHT_CHOICES

    try:
        import gguf
    except ImportError:
        raise GptkitError("export --format gguf needs the `gguf` package: pip install 'gptkit[gguf]'") from None
    run_dir, out = Path(run_dir), Path(out_file)
    if outtype not in OUTTYPES:
        raise ArgumentError("outtype", f"must be one of {', '.join(OUTTYPES)}", outtype, flag="--outtype")
    if out.is_dir():
        raise ArgumentError("out", "is a folder; give the .gguf file to write", shown(out), flag="--out")
    if out.is_file() and _first_bytes(out) != GGUF_MAGIC:
        raise ArgumentError("out", "exists and is not a GGUF file; choose a new file name", shown(out), flag="--out")
    config = read_run_config(run_dir)
    arch = gguf_architecture(config.model)
    if not (run_dir / TOKENIZER_FILE).exists():
        raise GptkitError(f"export --format gguf: {shown(run_dir)} has no tokenizer; llama.cpp needs one in the file")
    tokenizer = load_tokenizer(run_dir)
    vocab = gguf_vocab(tokenizer, config.model.vocab_size, shown(run_dir / TOKENIZER_FILE))
    model = load_model(run_dir, config, WEIGHT_CHOICES[weights])
    if config.lora.r:
        model = merge_lora(model)
    tensors = gguf_tensors(model, arch)
    with replacing(out) as tmp:
        writer = gguf.GGUFWriter(tmp, arch)
        writer.add_name(run_dir.resolve().name)
        writer.add_file_type(
            {
                "f32": gguf.LlamaFileType.ALL_F32,
                "f16": gguf.LlamaFileType.MOSTLY_F16,
                "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
            }[outtype]
        )
        add_metadata(writer, model.config, arch)
        vocab.add_to(writer)
        if is_chat_tokenizer(tokenizer):
            writer.add_chat_template(JINJA_TEMPLATE)
        for name, array in tensors.items():
            data, raw_type = stored(gguf, array, outtype)
            writer.add_tensor(name, data, raw_dtype=raw_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    for note in vocab.notes:
        echo(note)
    return out


def _first_bytes(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read(len(GGUF_MAGIC))


def stored(gguf, array: np.ndarray, outtype: str):
    """(data, raw dtype or None) of one tensor: vectors stay float32, as llama.cpp's converter keeps them;
    matrices become f16 or q8_0 (rows whose length is no multiple of 32: f16)."""
    if outtype == "f32" or array.ndim == 1:
        return array.astype(np.float32), None
    if outtype == "q8_0" and array.shape[-1] % Q8_BLOCK == 0:
        return gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0
    return array.astype(np.float16), None
