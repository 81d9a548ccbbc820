"""`gptkit info`: what each preset (or a trained run) is, with parameter counts, without building weights.

Parameters are counted from the config alone (`gptkit.memory.param_count`), so even `gpt2-xl` is instant.
A preset has no vocabulary of its own: GPT-2 shapes are counted with GPT-2's 50,257 tokens, the others with
Tiny Shakespeare's 65 characters (say `--vocab-size N` for yours).
"""


def count_params(config) -> tuple[int, int]:
    """(all parameters, without the position embedding) of a model with this GPTConfig."""
    from gptkit.memory import param_count  # here, not at the top: `gptkit --help` must not import torch

    total = param_count(config)
    positions = config.block_size * config.n_embd if config.pos == "learned" and config.arch == "gpt" else 0
    return total, total - positions


def describe_config(config) -> str:
    m = config
    if m.arch == "bigram":
        return f"bigram: a {m.vocab_size} x {m.vocab_size} table of next-token logits, block {m.block_size}"
    kinds = f"pos={m.pos} norm={m.norm} mlp={m.mlp}" + (" qk_norm" if m.qk_norm else "")
    heads = f"{m.n_head} heads" + (f" ({m.n_kv_head} kv)" if m.n_kv_head else "")
    return f"{m.n_layer} layers, {heads}, {m.n_embd} wide, block {m.block_size}, vocab {m.vocab_size}, {kinds}"


def preset_table(vocab_size: int | None = None) -> str:
    from gptkit.budget import format_size
    from gptkit.config import resolve_config
    from gptkit.presets import PRESETS

    lines = [f"{'preset':<12} {'params':>10}  shape"]
    for name, preset in PRESETS.items():
        if "model" not in preset:
            lines.append(
                f"{name:<12} {'':>10}  training settings only (train.objective={preset['train']['objective']}); "
                "the shape comes from --init-from"
            )
            continue
        config = resolve_config(preset=name).model
        config.vocab_size = vocab_size or (50257 if name.startswith("gpt2") else 65)
        total, _ = count_params(config)
        lines.append(f"{name:<12} {format_size(total):>10}  {describe_config(config)}")
    return "\n".join(lines)


def run_summary(run_dir) -> str:
    from gptkit.budget import format_size
    from gptkit.checkpoint import read_run_config

    config = read_run_config(run_dir)
    total, non_embedding = count_params(config.model)
    lines = [
        f"run {run_dir}: {format_size(total)} parameters ({format_size(non_embedding)} without position embeddings)",
        describe_config(config.model),
        f"preset {config.preset or '(none)'}, data {', '.join(d.path for d in config.data)}",
    ]
    lines.extend(budget_lines(run_dir, config))
    if config.lora.r:
        from gptkit.lora_base import read_base_reference
        from gptkit.paths import shown

        base = read_base_reference(run_dir, check=False)
        lora = config.lora
        lines.append(
            f"LoRA adapters r={lora.r} alpha={lora.alpha:g} on {lora.targets} of base run {shown(base['run'])} "
            f"(weights sha256 {base['sha256'][:12]}); `gptkit merge` makes it a plain run"
        )
    return "\n".join(lines)


def budget_lines(run_dir, config) -> list[str]:
    """The token budget of a trained run: the tokens it saw (from its metrics), against its size and data."""
    from pathlib import Path

    from gptkit.budget import TokenBudget, data_shares
    from gptkit.train.metrics import read_metrics

    metrics = Path(run_dir) / "metrics.jsonl"
    records = [r for r in read_metrics(metrics) if "tokens" in r] if metrics.is_file() else []
    if not records:
        return []
    last = max(records, key=lambda r: r["tokens"])
    shares = data_shares(config, steps=last.get("step"))  # stages: the steps it ran, not the plan
    budget = TokenBudget.of(config.model, last["tokens"], shares=shares)
    warning = budget.warning()
    return [budget.line().replace("training tokens", "tokens trained on"), *([warning] if warning else [])]


def cmd_info(args) -> None:
    print(run_summary(args.run) if args.run else preset_table(args.vocab_size))


def add_info_command(sub) -> None:
    p = sub.add_parser("info", help="presets with their parameter counts, or what a trained run is")
    p.add_argument("run", nargs="?", help="a run directory (default: list the presets)")
    p.add_argument("--vocab-size", type=int, default=None, help="count presets with this vocabulary size")
    p.set_defaults(func=cmd_info)
