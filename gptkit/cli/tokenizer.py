"""`gptkit tokenizer ...`: train a BPE tokenizer, look at encodings, import and export other formats.

Subcommands: `train`, `encode`, `decode`, `import-gpt2`, `import-tiktoken`, `import-hf`, `export`. Wiring only:
the work happens in `gptkit.tokenizer`. Registered on the main parser by `gptkit.cli`.
"""

import json
from pathlib import Path

from gptkit.cli.common import TEXT_INPUTS
from gptkit.errors import GptkitError


def _require_bpe(tok, what: str):
    from gptkit.tokenizer.bpe import BPETokenizer

    if not isinstance(tok, BPETokenizer):
        raise GptkitError(f"{what}: needs a BPE tokenizer; this one is a {type(tok).__name__}")
    return tok


def _saved(tok, out: str) -> None:
    if Path(out).is_dir():
        raise GptkitError(f"--out {out}: is a folder; give the file to write, e.g. {Path(out) / 'tokenizer.json'}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tok.save(out)
    specials = ", ".join(f"{s}={i}" for s, i in tok.specials.items()) or "none"
    print(f"wrote {out}: vocab {tok.vocab_size} ({len(tok.merges)} merges, special tokens: {specials})")


def cmd_train(args) -> None:
    from gptkit.tokenizer.bpe_train import train_bpe

    tok = train_bpe(args.paths, args.vocab_size, pattern=args.pattern, specials=args.special, text_field=args.field)
    _saved(tok, args.out)


def _show_piece(data: bytes) -> str:
    try:
        return repr(data.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(data)  # part of a multi-byte character


def cmd_encode(args) -> None:
    from gptkit.tokenizer import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    if args.allow_special:
        ids = _require_bpe(tok, "--allow-special").encode(args.text, allowed_special="all")
    else:
        ids = tok.encode(args.text)
    print(json.dumps(ids))
    for token_id in ids:
        print(f"{token_id:>8}  {_show_piece(tok.decode_bytes([token_id]))}")
    print(f"{len(ids)} tokens, {len(args.text.encode('utf-8'))} bytes")


def cmd_decode(args) -> None:
    from gptkit.tokenizer import load_tokenizer

    print(load_tokenizer(args.tokenizer).decode(args.ids))


def cmd_import_gpt2(args) -> None:
    from gptkit.tokenizer.formats import import_gpt2
    from gptkit.tokenizer.patterns import resolve_pattern

    _saved(import_gpt2(args.encoder_json, args.vocab_bpe, pattern=resolve_pattern(args.pattern)), args.out)


def cmd_import_tiktoken(args) -> None:
    from gptkit.tokenizer.formats import import_tiktoken
    from gptkit.tokenizer.patterns import resolve_pattern

    pattern = resolve_pattern(args.pattern) if args.pattern else None
    _saved(import_tiktoken(args.ranks, args.meta, pattern=pattern), args.out)


def cmd_import_hf(args) -> None:
    from gptkit.tokenizer.hf_json import read_hf_bpe

    _saved(read_hf_bpe(args.tokenizer_json), args.out)


def cmd_export(args) -> None:
    from gptkit.tokenizer import load_tokenizer
    from gptkit.tokenizer.formats import export_gpt2, export_tiktoken
    from gptkit.tokenizer.hf_json import write_hf_bpe

    tok = _require_bpe(load_tokenizer(args.tokenizer), "tokenizer export")
    writer = {"gpt2": export_gpt2, "tiktoken": export_tiktoken, "hf": write_hf_bpe}[args.format]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for path in writer(tok, args.out):
        print(f"wrote {path}")


def add_tokenizer_commands(sub) -> None:
    """Register `gptkit tokenizer ...` on the main parser's subcommands."""
    top = sub.add_parser("tokenizer", help="train, inspect, import and export BPE tokenizers")
    tsub = top.add_subparsers(dest="tokenizer_command", required=True, metavar="COMMAND")

    p = tsub.add_parser("train", parents=[TEXT_INPUTS], help="train a byte-level BPE tokenizer on the text")
    p.add_argument("--vocab-size", type=int, required=True, help="tokens in all: 256 bytes + merges + specials")
    p.add_argument("--pattern", default="gpt4", help="pre-split regex: gpt4 (default), gpt2, none, or a regex")
    p.add_argument("--special", action="append", default=[], help="a special token, e.g. '<|endoftext|>'")
    p.add_argument("--out", required=True, help="tokenizer JSON file to write")
    p.set_defaults(func=cmd_train)

    p = tsub.add_parser("encode", help="show the ids of a text, and the pieces they stand for")
    p.add_argument("tokenizer", help="tokenizer JSON, or a data/run folder holding tokenizer.json")
    p.add_argument("text")
    p.add_argument("--allow-special", action="store_true", help="encode special tokens' text as special ids")
    p.set_defaults(func=cmd_encode)

    p = tsub.add_parser("decode", help="turn ids back into text")
    p.add_argument("tokenizer")
    p.add_argument("ids", nargs="+", type=int)
    p.set_defaults(func=cmd_decode)

    p = tsub.add_parser("import-gpt2", help="OpenAI's encoder.json + vocab.bpe -> our tokenizer JSON")
    p.add_argument("encoder_json")
    p.add_argument("vocab_bpe")
    p.add_argument("--pattern", default="gpt2", help="pre-split pattern (the files hold none): gpt2 (default), gpt4")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_import_gpt2)

    p = tsub.add_parser("import-tiktoken", help="a .tiktoken ranks file (+ tiktoken.json) -> our tokenizer JSON")
    p.add_argument("ranks")
    p.add_argument("--meta", help="JSON with pat_str and special_tokens (default: tiktoken.json beside ranks)")
    p.add_argument("--pattern", help="pre-split pattern if there is no meta file: gpt2, gpt4 or a regex")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_import_tiktoken)

    p = tsub.add_parser("import-hf", help="a Hugging Face byte-level BPE tokenizer.json -> our tokenizer JSON")
    p.add_argument("tokenizer_json")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_import_hf)

    p = tsub.add_parser("export", help="write a BPE tokenizer in tiktoken, Hugging Face or GPT-2 format")
    p.add_argument("tokenizer")
    p.add_argument("--format", required=True, choices=["tiktoken", "hf", "gpt2"])
    p.add_argument("--out", required=True, help="folder to write into")
    p.set_defaults(func=cmd_export)
