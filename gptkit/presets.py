"""Named presets: a name stands for a set of model and training settings.

Each preset is plain data (section -> key -> value) applied on top of the dataclass defaults. Sources:
`cpu-baby` is nanoGPT's CPU recipe from its README (4 layers, 4 heads, 128 wide, block 64, batch 12,
dropout 0, 2000 iters); `shakespeare` is nanoGPT's `config/train_shakespeare_char.py` (meant for a GPU).
"""

PRESETS: dict[str, dict[str, dict]] = {
    "cpu-baby": {
        "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0},
        "train": {
            "batch_size": 12,
            "max_iters": 2000,
            "lr": 1e-3,
            "min_lr": 1e-4,
            "warmup_iters": 100,
            "beta2": 0.99,
            "weight_decay": 0.1,
            "eval_interval": 250,
            "eval_iters": 50,
            "log_interval": 50,
        },
    },
    "shakespeare": {
        "model": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.2},
        "train": {
            "batch_size": 64,
            "max_iters": 5000,
            "lr": 1e-3,
            "min_lr": 1e-4,
            "warmup_iters": 100,
            "beta2": 0.99,
            "weight_decay": 0.1,
            "eval_interval": 250,
            "eval_iters": 200,
        },
    },
}
