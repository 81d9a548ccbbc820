import math

import torch

from gptkit.config import GPTConfig, TrainConfig
from gptkit.model import GPT
from gptkit.train.optim import build_optimizer, lr_at, param_groups


def test_weight_decay_only_on_matrices_and_embeddings():
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32))
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert any(p is model.transformer.wte.weight for p in decay["params"])
    counted = sum(p.numel() for group in (decay, no_decay) for p in group["params"])
    assert counted == model.num_params(non_embedding=False)  # tied weight counted once, nothing left out
    assert build_optimizer(model, TrainConfig(), torch.device("cpu")).param_groups[1]["weight_decay"] == 0.0


def test_schedule_warms_up_then_cosine_decays_to_min_lr():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_iters=10, max_iters=110)
    warm = [lr_at(s, cfg) for s in range(10)]
    assert warm == sorted(warm) and warm[0] > 0 and warm[-1] < 1.0
    assert lr_at(10, cfg) == 1.0
    assert math.isclose(lr_at(60, cfg), 0.55)  # half way through the cosine: mid-point of lr and min_lr
    assert math.isclose(lr_at(110, cfg), 0.1) and lr_at(500, cfg) == 0.1
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 120))
