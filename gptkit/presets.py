"""Named presets: a name stands for a set of model and training settings.

Each preset is plain data (section -> key -> value) applied on top of the dataclass defaults. Sources:
`cpu-baby` is nanoGPT's CPU recipe from its README (4 layers, 4 heads, 128 wide, block 64, batch 12,
dropout 0, 2000 iters); `shakespeare` is nanoGPT's `config/train_shakespeare_char.py` (meant for a GPU);
the `gpt2*` shapes are GPT-2's four sizes (Radford et al. 2019) with nanoGPT's `train_gpt2.py` schedule;
`llama-tiny` is `cpu-baby`'s size with Llama's choices (RoPE, RMSNorm, SwiGLU, no biases, untied head, GQA);
`cpu-speedrun` trains that shape (plus QK-norm and a logit soft-cap, with Muon, compiled) for 10 wall-clock
minutes with a WSD schedule. `sft` holds training settings only, for chat fine-tuning on top of a pretrained run.
`bigram` is the nanoGPT lecture's bigram model (its LR 1e-2) on `cpu-baby`'s batches and steps.
"""

_GPT2_TRAIN = {  # nanoGPT's config/train_gpt2.py: ~0.5M tokens per step on 8 GPUs (here: grad_accum 40)
    "batch_size": 12,
    "grad_accum": 40,
    "max_iters": 600000,
    "lr": 6e-4,
    "warmup_iters": 2000,
    "beta2": 0.95,
    "weight_decay": 0.1,
    "eval_interval": 1000,
    "eval_iters": 200,
    "log_interval": 10,
}


_CPU_TRAIN = {  # nanoGPT's Shakespeare-char schedule at the size of its README's CPU recipe
    "batch_size": 12,
    "max_iters": 2000,
    "lr": 1e-3,
    "warmup_iters": 100,
    "beta2": 0.99,
    "weight_decay": 0.1,
    "eval_interval": 250,
    "eval_iters": 50,
    "log_interval": 50,
}


_LLAMA_TINY_MODEL = {  # cpu-baby's size with Llama's choices
    "n_layer": 4,
    "n_head": 4,
    "n_kv_head": 2,
    "n_embd": 128,
    "block_size": 64,
    "dropout": 0.0,
    "pos": "rope",
    "norm": "rmsnorm",
    "mlp": "swiglu",
    "bias": False,
    "tie_embeddings": False,
}


def _gpt2(n_layer: int, n_head: int, n_embd: int) -> dict:
    model = {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, "block_size": 1024, "dropout": 0.0}
    return {"model": model, "train": dict(_GPT2_TRAIN)}


PRESETS: dict[str, dict[str, dict]] = {
    "tiny": {
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64, "dropout": 0.0},
        "train": {
            "batch_size": 12,
            "max_iters": 500,
            "lr": 1e-3,
            "warmup_iters": 50,
            "eval_interval": 100,
            "eval_iters": 20,
            "log_interval": 50,
        },
    },
    # The nanoGPT lecture's first model: a table of next-token logits, on cpu-baby's batches and steps, with the
    # lecture's learning rate for it (1e-2); the width and depth settings mean nothing to it.
    "bigram": {
        "model": {"arch": "bigram", "n_layer": 1, "n_head": 1, "n_embd": 8, "block_size": 64, "dropout": 0.0},
        "train": {**_CPU_TRAIN, "lr": 1e-2, "weight_decay": 0.0},
    },
    "cpu-baby": {
        "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0},
        "train": dict(_CPU_TRAIN),
    },
    "shakespeare": {
        "model": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.2},
        "train": {
            "batch_size": 64,
            "max_iters": 5000,
            "lr": 1e-3,
            "warmup_iters": 100,
            "beta2": 0.99,
            "weight_decay": 0.1,
            "eval_interval": 250,
            "eval_iters": 200,
        },
    },
    "llama-tiny": {
        "model": dict(_LLAMA_TINY_MODEL),
        "train": dict(_CPU_TRAIN),
    },
    # The best 10-minute CPU recipe found so far (issue 10; docs/speedrun.md has the ablations): llama-tiny's
    # shape with QK-norm and logit soft-capping, Muon for the block matrices, trained to a wall-clock budget
    # with WSD, cooling down to 0 with weight decay 0.3 (the 10-minute model overfits; the doc's round 6).
    # QK-norm and the soft-cap have no transformers architecture, so this model does not export.
    "cpu-speedrun": {
        "model": {**_LLAMA_TINY_MODEL, "qk_norm": True, "logit_softcap": 30.0},
        "train": {
            **_CPU_TRAIN,
            "optimizer": "muon",
            "weight_decay": 0.3,
            "max_iters": 10**9,  # the time budget ends the run
            "time_budget_s": 600.0,
            "schedule": "wsd",
            "cooldown_frac": 0.2,
            "min_lr": 0.0,
            "eval_interval": 10**9,  # evaluate at the start and the end only: evals spend the budget
            "eval_iters": 200,
            "log_interval": 500,
            # Its RMSNorms, RoPE, QK-norm and SwiGLU are many small element-wise ops that torch.compile fuses:
            # 22-24% more steps in the 10 minutes on a 2-core AVX2 CPU, compile time included (docs/speedrun.md).
            "compile": True,
        },
    },
    # Chat fine-tuning of a run (`--init-from`): the shape comes from that run. A third of the cpu presets' LR,
    # as fine-tuning moves from a good place and should not wreck it; a short warmup (the weights are trained
    # already); frequent evals on the held-out conversations, as small chat sets overfit within hundreds of steps.
    "sft": {
        "train": {  # all the schedule's settings, so none carries over from the run fine-tuned (e.g. Muon, WSD)
            "objective": "sft",
            "optimizer": "adamw",
            "schedule": "cosine",
            "time_budget_s": 0.0,
            "lr_decay_iters": 0,
            "min_lr": -1.0,
            "grad_accum": 1,
            "batch_size": 16,
            "max_iters": 600,
            "lr": 3e-4,
            "warmup_iters": 20,
            "beta2": 0.99,
            "weight_decay": 0.0,
            "eval_interval": 100,
            "eval_iters": 20,
            "log_interval": 20,
        },
    },
    "gpt2": _gpt2(12, 12, 768),
    "gpt2-medium": _gpt2(24, 16, 1024),
    "gpt2-large": _gpt2(36, 20, 1280),
    "gpt2-xl": _gpt2(48, 25, 1600),
}
