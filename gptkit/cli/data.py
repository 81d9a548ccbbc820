"""`gptkit prepare`: text files, folders or a bundled dataset -> token shards (the work is `gptkit.data.prepare`)."""

from gptkit.cli.common import TEXT_INPUTS
from gptkit.errors import GptkitError


def cmd_prepare_chat(args) -> None:
    from gptkit.data.chat import prepare_chat

    if args.unknown_char is not None or args.field != "text":
        raise GptkitError("prepare --chat: --unknown-char and --field are for text; conversations name their fields")

    block_size = _run_block_size(args.tokenizer)
    meta = prepare_chat(
        args.paths,
        args.out,
        tokenizer=args.tokenizer,
        val_fraction=args.val_fraction,
        skip_invalid=args.skip_invalid,
        block_size=block_size,
    )
    chat = meta["chat"]
    skipped = f", {chat['skipped']} invalid record(s) skipped" if chat["skipped"] else ""
    print(
        f"wrote {args.out}: {chat['conversations']['train']:,} train + {chat['conversations']['val']:,} val "
        f"conversations, {meta['train_tokens']:,} + {meta['val_tokens']:,} tokens "
        f"({chat['supervised_tokens']['train']:,} + {chat['supervised_tokens']['val']:,} in assistant replies), "
        f"longest {chat['longest']:,} tokens, vocab {meta['vocab_size']}{skipped}"
    )
    if "too_long" in chat:  # the tokenizer came from a run: its rows are block_size + 1 tokens
        cut, size = chat["too_long"]["conversations"], chat["too_long"]["block_size"]
        fits = "all fit" if not cut else f"{cut:,} conversation(s) are longer and will be cut to a row in training"
        print(f"rows of the run's block_size {size} + 1 tokens: {fits}")
    else:  # a conversation longer than a training row is cut to it (and counted in the training log)
        print(f"train with model.block_size >= {max(chat['longest'] - 1, 1)} to keep every conversation whole")


def _run_block_size(tokenizer: str) -> int | None:
    """The block size of the run a tokenizer path belongs to (`runs/x` or `runs/x/tokenizer.json`), if it is one."""
    from pathlib import Path

    from gptkit.checkpoint import CONFIG_FILE, read_run_config

    folder = Path(tokenizer) if Path(tokenizer).is_dir() else Path(tokenizer).parent
    return read_run_config(folder).model.block_size if (folder / CONFIG_FILE).is_file() else None


def cmd_prepare(args) -> None:
    from gptkit.data.prepare import prepare

    if args.chat:
        return cmd_prepare_chat(args)

    meta = prepare(
        args.paths,
        args.out,
        tokenizer=args.tokenizer,
        val_fraction=args.val_fraction,
        unknown_char=args.unknown_char,
        text_field=args.field,
        workers=args.workers,
    )
    shards = sum(len(s) for s in meta["splits"].values())
    print(
        f"wrote {args.out}: {meta['train_tokens']:,} train + {meta['val_tokens']:,} val tokens "
        f"({meta['dtype']}, {shards} shard(s)), vocab {meta['vocab_size']}, from {len(meta['sources'])} file(s), "
        f"{meta['documents']:,} document(s)"
    )


def add_data_commands(sub) -> None:
    p = sub.add_parser(
        "prepare", parents=[TEXT_INPUTS], help="text files, folders or a bundled dataset -> token files for training"
    )
    p.add_argument(
        "--tokenizer", default="char", help="'char' (build from the text) or a tokenizer JSON (BPE or char) to use"
    )
    p.add_argument("--out", required=True, help="output folder for token shards, meta.json and tokenizer.json")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the text held out (default 0.1)")
    p.add_argument("--unknown-char", default=None, help="char tokenizer: map unseen characters to this one")
    p.add_argument("--workers", type=int, default=1, help="encoding processes (default 1)")
    p.add_argument(
        "--chat",
        action="store_true",
        help="the PATHs are conversations (.jsonl/.json: OpenAI messages, ShareGPT or Alpaca) for `--preset sft`",
    )
    p.add_argument("--skip-invalid", action="store_true", help="--chat: skip (and count) invalid conversations")
    p.set_defaults(func=cmd_prepare)
