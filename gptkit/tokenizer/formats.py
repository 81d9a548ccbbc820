"""Reading and writing other tokenizer formats: GPT-2's files and tiktoken's ranks.

- GPT-2: `encoder.json` (token text -> id, bytes shown through GPT-2's byte-to-unicode table) and
  `vocab.bpe` (one merge per line, in order); other special tokens in `special_tokens.json`.
- tiktoken: a `.tiktoken` file (base64 token bytes and rank per line) plus `tiktoken.json` (pattern and
  special tokens, which the ranks file cannot hold); or an in-memory `tiktoken.Encoding`.
Hugging Face's `tokenizer.json` is `hf_json.py`'s. Entry points: `import_gpt2`, `export_gpt2`,
`export_tiktoken`, `import_tiktoken`, `from_tiktoken_encoding`.
"""

import base64
import json
from functools import lru_cache
from pathlib import Path

from gptkit.atomic import atomic_write_text
from gptkit.errors import GptkitError
from gptkit.paths import read_json
from gptkit.tokenizer.bpe import BPETokenizer, check_rank_consistent, gpt2_byte_ids
from gptkit.tokenizer.patterns import GPT2_PATTERN


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2's table: printable bytes stand for themselves, the other 68 map to code points from 256 up."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_byte() -> dict[str, int]:
    return {char: byte for byte, char in byte_to_unicode().items()}


def to_visible(data: bytes) -> str:
    table = byte_to_unicode()
    return "".join(table[b] for b in data)


def merges_from_vocab(
    vocab: dict[str, int], merge_lines: list[tuple[str, str]], source: str, pattern: str = GPT2_PATTERN
) -> BPETokenizer:
    """Build a tokenizer from visible-text vocab + merges, checking that merge i makes id 256 + i."""
    byte_ids = [0] * 256
    seen = set()
    for char, byte in unicode_to_byte().items():
        if char not in vocab:
            raise GptkitError(f"{source}: the vocabulary lacks the single-byte token {char!r}; not a byte-level BPE")
        byte_ids[byte] = vocab[char]
        seen.add(vocab[char])
    if seen != set(range(256)):
        raise GptkitError(f"{source}: single-byte tokens must have ids 0..255")
    merges = []
    for rank, (left, right) in enumerate(merge_lines):
        try:
            pair = (vocab[left], vocab[right])
            made = vocab[left + right]
        except KeyError as err:
            raise GptkitError(
                f"{source}: merge {rank} ({left} {right}) uses a token not in the vocabulary ({err})"
            ) from None
        if made != 256 + rank:
            raise GptkitError(
                f"{source}: merge {rank} makes id {made}, expected {256 + rank}; ids must follow merge order"
            )
        merges.append(pair)
    ordinary = 256 + len(merges)
    specials = {text: i for text, i in vocab.items() if i >= ordinary}
    return _checked(BPETokenizer(merges, pattern=pattern, specials=specials, byte_ids=byte_ids))


def _checked(tok: BPETokenizer) -> BPETokenizer:
    """Mark a foreign vocabulary whose tokens are not all reachable through their merges (see bpe.py)."""
    if not check_rank_consistent(tok):
        tok = BPETokenizer(
            tok.merges, pattern=tok.pattern, specials=tok.specials, byte_ids=tok.byte_ids, rank_consistent=False
        )
    return tok


def import_gpt2(encoder_json, vocab_bpe, *, pattern: str = GPT2_PATTERN) -> BPETokenizer:
    """OpenAI's GPT-2 files -> a tokenizer that encodes exactly as GPT-2 (and tiktoken's `gpt2`).

    The files hold no pre-split pattern; GPT-2's is assumed unless `pattern` says otherwise.
    """
    vocab = read_json(encoder_json)
    if not isinstance(vocab, dict):
        raise GptkitError(f"{encoder_json}: expected a JSON object of token -> id")
    try:
        lines = Path(vocab_bpe).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise GptkitError(f"{vocab_bpe}: cannot read it as a UTF-8 merges file ({type(err).__name__})") from None
    merge_lines = []
    for number, line in enumerate(lines, 1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise GptkitError(f"{vocab_bpe}:{number}: expected two tokens separated by a space, got {line!r}")
        merge_lines.append((parts[0], parts[1]))
    extra = Path(encoder_json).with_name("special_tokens.json")  # written by `export_gpt2`
    if extra.exists():
        vocab.update(read_json(extra))
    return merges_from_vocab(vocab, merge_lines, str(encoder_json), pattern)


GPT2_SPECIALS = ("<|endoftext|>", "<|startoftext|>")  # the special tokens GPT-2's encoder.json may hold


def export_gpt2(tok: BPETokenizer, out_dir) -> list[Path]:
    """Write `encoder.json` and `vocab.bpe` (GPT-2's formats), plus `special_tokens.json` for special tokens
    other than GPT-2's own (tiktoken's loader refuses them inside encoder.json). The files hold no pattern."""
    if tok.byte_ids != gpt2_byte_ids():
        raise GptkitError(
            "the GPT-2 format: this tokenizer numbers bytes in another order than GPT-2's, which the GPT-2 file "
            "format (and tiktoken's loader for it) assumes; export as tiktoken or hf instead"
        )
    out = Path(out_dir)
    vocab = {to_visible(data): i for i, data in enumerate(tok.token_bytes)}
    vocab.update({s: i for s, i in tok.specials.items() if s in GPT2_SPECIALS})
    merges = [f"{to_visible(tok.token_bytes[a])} {to_visible(tok.token_bytes[b])}" for a, b in tok.merges]
    atomic_write_text(out / "encoder.json", json.dumps(vocab, ensure_ascii=False))
    atomic_write_text(out / "vocab.bpe", "#version: 0.2\n" + "\n".join(merges) + "\n")
    written = [out / "encoder.json", out / "vocab.bpe"]
    others = {s: i for s, i in tok.specials.items() if s not in GPT2_SPECIALS}
    if others:
        atomic_write_text(out / "special_tokens.json", json.dumps(others, ensure_ascii=False))
        written.append(out / "special_tokens.json")
    return written


def export_tiktoken(tok: BPETokenizer, out_dir) -> list[Path]:
    """Write `tokenizer.tiktoken` (ranks) and `tiktoken.json` (pattern, special tokens)."""
    out = Path(out_dir)
    lines = [f"{base64.b64encode(data).decode('ascii')} {i}" for i, data in enumerate(tok.token_bytes)]
    atomic_write_text(out / "tokenizer.tiktoken", "\n".join(lines) + "\n")
    atomic_write_text(out / "tiktoken.json", json.dumps({"pat_str": tok.pattern, "special_tokens": tok.specials}))
    return [out / "tokenizer.tiktoken", out / "tiktoken.json"]


def _from_ranks(ranks: dict[bytes, int], pattern: str, specials: dict[str, int], source: str) -> BPETokenizer:
    """Recover merges from tiktoken-style ranks: each token splits into the two parts that BPE, using only the
    tokens ranked below it, reaches last."""
    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    if [r for _, r in by_rank] != list(range(len(by_rank))):
        raise GptkitError(f"{source}: ranks must be 0..N-1 without gaps")
    byte_ids = [0] * 256
    singles = [(data, r) for data, r in by_rank if len(data) == 1]
    if len(singles) != 256 or any(r >= 256 for _, r in singles):
        raise GptkitError(f"{source}: the 256 single bytes must have ranks 0..255")
    for data, r in singles:
        byte_ids[data[0]] = r
    merges = []
    for data, r in by_rank[256:]:
        parts = [bytes([b]) for b in data]
        while len(parts) > 2:
            scores = [ranks.get(parts[i] + parts[i + 1], 1 << 62) for i in range(len(parts) - 1)]
            best = min(range(len(scores)), key=scores.__getitem__)
            if scores[best] >= r:
                break
            parts[best : best + 2] = [parts[best] + parts[best + 1]]
        if len(parts) != 2:
            raise GptkitError(f"{source}: token of rank {r} cannot be built from two lower-ranked tokens")
        merges.append((ranks[parts[0]], ranks[parts[1]]))
    return _checked(BPETokenizer(merges, pattern=pattern, specials=specials, byte_ids=byte_ids))


def import_tiktoken(ranks_file, meta_file=None, *, pattern: str | None = None, specials=None) -> BPETokenizer:
    """A `.tiktoken` ranks file (plus `tiktoken.json` beside it, or an explicit pattern and specials)."""
    ranks_file = Path(ranks_file)
    meta_path = Path(meta_file) if meta_file else ranks_file.with_name("tiktoken.json")
    meta = read_json(meta_path) if meta_path.exists() else {}
    if not isinstance(meta, dict) or not isinstance(meta.get("special_tokens", {}), dict):
        raise GptkitError(f"{meta_path}: expected an object with pat_str and special_tokens")
    pattern = pattern or meta.get("pat_str")
    if not pattern:
        raise GptkitError(f"{ranks_file}: no pattern; put tiktoken.json beside it or pass --pattern")
    ranks = {}
    try:
        for line in ranks_file.read_text(encoding="ascii").splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    except FileNotFoundError:
        raise GptkitError(f"{ranks_file}: no such file") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise GptkitError(f"{ranks_file}: not a .tiktoken ranks file ({err})") from None
    return _from_ranks(
        ranks, pattern, specials if specials is not None else meta.get("special_tokens", {}), str(ranks_file)
    )


def from_tiktoken_encoding(encoding) -> BPETokenizer:
    """An in-memory `tiktoken.Encoding` -> our tokenizer with the same ids."""
    return _from_ranks(encoding._mergeable_ranks, encoding._pat_str, dict(encoding._special_tokens), encoding.name)
