"""`gptkit export` (a run -> a Hugging Face transformers folder, a LoRA run's adapters -> a PEFT folder, or a
run -> one GGUF file for llama.cpp),
`gptkit import` (back) and `gptkit merge` (a LoRA run -> a plain run); see `gptkit.hf` and `gptkit.lora_merge`."""

from gptkit.cli.common import MEMORY_CHECK_HELP, RUN, WEIGHTS
from gptkit.errors import ArgumentError


def cmd_export(args) -> None:
    if args.outtype is not None and args.format != "gguf":
        raise ArgumentError("outtype", "applies to --format gguf only", args.outtype, flag="--outtype")
    if args.format == "gguf":
        from gptkit.gguf_export import export_gguf

        notes = []
        out = export_gguf(args.run, args.out, outtype=args.outtype or "f32", weights=args.weights, echo=notes.append)
        print(f"wrote {out}: run it with llama.cpp, e.g. llama_cpp.Llama({str(out)!r})", *notes, sep="\n")
        return
    if args.format == "peft":
        from gptkit.hf.peft import export_peft

        notes = []  # where the base model comes from, said after what was written
        out = export_peft(args.run, args.out, weights=args.weights, echo=notes.append)
        print(f"wrote {out}: load it with peft.PeftModel.from_pretrained(base, {str(out)!r})", *notes, sep="\n")
        return
    from gptkit.hf import export_hf

    out = export_hf(args.run, args.out, weights=args.weights)
    print(f"wrote {out}: load it with transformers.AutoModelForCausalLM.from_pretrained({str(out)!r})")


def cmd_merge(args) -> None:
    from gptkit.lora_merge import merge_run

    out = merge_run(args.run, args.out, weights=args.weights)
    print(f"wrote {out}: a plain run with the adapters merged in; sample with `gptkit sample {out}`")


def cmd_import(args) -> None:
    from gptkit.hf import import_hf

    out = import_hf(args.source, args.out, tokenizer=args.tokenizer, check_memory=not args.skip_memory_check)
    if (out / "tokenizer.json").exists():
        print(f"wrote {out}: sample with `gptkit sample {out}`, fine-tune with `gptkit train --init-from {out} ...`")
    else:
        print(f"wrote {out} (weights only)")


def add_hf_commands(sub) -> None:
    p = sub.add_parser(
        "export", parents=[RUN, WEIGHTS], help="write a run as a Hugging Face transformers checkpoint folder"
    )
    p.add_argument(
        "--format",
        default="hf",
        choices=["hf", "peft", "gguf"],
        help="hf: GPT2LMHeadModel or LlamaForCausalLM (a LoRA run merged); peft: a LoRA run's adapters for PEFT; "
        "gguf: one file for llama.cpp (a LoRA run merged)",
    )
    p.add_argument("--out", required=True, help="folder to write (replaced if it exists); for gguf the .gguf file")
    p.add_argument("--outtype", choices=["f32", "f16", "q8_0"], help="gguf only: weight precision (default f32, exact)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("merge", parents=[RUN, WEIGHTS], help="fold a LoRA run's adapters into a plain run")
    p.add_argument("--out", required=True, help="run directory to create")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("import", help="turn a local Hugging Face GPT-2 or Llama folder into a run directory")
    p.add_argument("source", help="folder with config.json and model.safetensors (or shards, or pytorch_model.bin)")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--tokenizer", help="a tokenizer to attach: ours, a HF tokenizer.json, or a folder with one")
    p.add_argument("--skip-memory-check", action="store_true", help=MEMORY_CHECK_HELP)
    p.set_defaults(func=cmd_import)
