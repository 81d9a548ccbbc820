"""gptkit's Muon (batched Newton-Schulz, no emulated bf16) makes torch.optim.Muon's updates and shares its state."""

import copy

import pytest
import torch

from gptkit.train.precision import native_bf16

pytestmark = pytest.mark.skipif(not hasattr(torch.optim, "Muon"), reason="torch.optim.Muon needs PyTorch >= 2.9")

SHAPES = [(32, 64), (64, 32), (32, 64), (48, 48), (96, 32)]  # wide, tall, a repeated shape, square


def matrices(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for shape in SHAPES]


def test_orthogonalize_matches_torch_matrix_by_matrix():
    from torch.optim._muon import _zeropower_via_newtonschulz

    from gptkit.train.muon import orthogonalize

    coefficients, steps, eps = (3.4445, -4.7750, 2.0315), 5, 1e-7
    updates = matrices()
    batched = orthogonalize(updates, coefficients, steps, eps, torch.float32)
    for update, ours in zip(updates, batched):
        alone = orthogonalize([update], coefficients, steps, eps, torch.float32)[0]
        assert ours.shape == update.shape and torch.allclose(ours, alone, atol=1e-5)
        theirs = _zeropower_via_newtonschulz(update, coefficients, steps, eps).float()  # bf16 inside
        assert (ours - theirs).norm() / theirs.norm() < 0.02  # float32 vs bf16 rounding only
        singular = torch.linalg.svdvals(ours)  # roughly orthogonal: Muon's "U S' V^T", S' around 1
        assert 0.6 < singular.median() < 1.4 and singular.max() < 1.6


@pytest.mark.parametrize("adjust", ["match_rms_adamw", "original"])
def test_steps_match_torch_muon_and_state_loads_across(adjust):
    from gptkit.train.muon import Muon

    options = dict(lr=0.02, weight_decay=0.1, momentum=0.95, adjust_lr_fn=adjust)
    start = matrices(seed=1)
    theirs = [torch.nn.Parameter(m.clone()) for m in start]
    ours = [torch.nn.Parameter(m.clone()) for m in start]
    torch_muon = torch.optim.Muon(theirs, **options)
    our_muon = Muon(ours, ns_dtype=torch.float32, **options)
    for step in range(3):
        grads = matrices(seed=10 + step)
        for params, optimizer in ((theirs, torch_muon), (ours, our_muon)):
            for param, grad in zip(params, grads):
                param.grad = grad.clone()
            optimizer.step()
    decay = (1 - options["lr"] * options["weight_decay"]) ** 3
    for a, b, first in zip(theirs, ours, start):
        assert not torch.equal(a, b)  # float32 against torch's bf16 iteration: not bit for bit
        moved = (a - decay * first).norm()  # what the orthogonalised updates did, the weight decay aside
        assert moved > 0.05 and (a - b).norm() / moved < 0.03  # the same steps, up to bf16 vs float32
    # either optimizer's checkpoint resumes the other: the same state entries, then the same next step
    copies = [torch.nn.Parameter(p.detach().clone()) for p in theirs]
    resumed = Muon(copies, ns_dtype=torch.float32, **options)
    resumed.load_state_dict(copy.deepcopy(torch_muon.state_dict()))  # a copy, as a checkpoint on disk would be
    back = torch.optim.Muon([torch.nn.Parameter(p.detach().clone()) for p in ours], **options)
    back.load_state_dict(copy.deepcopy(our_muon.state_dict()))
    grads, before = matrices(seed=20), [p.detach().clone() for p in theirs]
    for params, optimizer in ((theirs, torch_muon), (copies, resumed)):
        for param, grad in zip(params, grads):
            param.grad = grad.clone()
        optimizer.step()
    decay = 1 - options["lr"] * options["weight_decay"]
    for a, b, first in zip(theirs, copies, before):
        assert (a - b).norm() / (a - decay * first).norm() < 0.03  # the same step (momentum carried over)
    assert all(
        torch.equal(back.state[p]["momentum_buffer"], our_muon.state[q]["momentum_buffer"])
        for p, q in zip(back.param_groups[0]["params"], ours)
    )


def test_bf16_iteration_and_a_pickled_copy_step_alike():
    from gptkit.train.muon import Muon

    start = matrices(seed=2)
    runs = {}
    for name, dtype in (("float32", torch.float32), ("bf16", torch.bfloat16), ("copy", torch.float32)):
        params = [torch.nn.Parameter(m.clone()) for m in start]
        optimizer = Muon(params, ns_dtype=dtype, lr=0.02, adjust_lr_fn="match_rms_adamw")
        if name == "copy":  # torch's Optimizer pickles only defaults, state and groups: the dtype must survive
            optimizer = copy.deepcopy(optimizer)
            params = optimizer.param_groups[0]["params"]
            assert optimizer.ns_dtype == torch.float32
        for param, grad in zip(params, matrices(seed=3)):
            param.grad = grad
        optimizer.step()
        runs[name] = [p.detach() - m for p, m in zip(params, start)]
    for exact, rough, copied in zip(runs["float32"], runs["bf16"], runs["copy"]):
        assert torch.equal(exact, copied)
        assert (exact - rough).norm() / exact.norm() < 0.02


def test_ranks_agree_on_the_newton_schulz_dtype():
    from gptkit.config import GPTConfig, TrainConfig
    from gptkit.model import GPT
    from gptkit.train.optim import build_optimizer

    model = GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=2, n_head=2, n_embd=32))
    for verdict, expected in ((True, torch.bfloat16), (False, torch.float32)):
        asked = []
        agree = lambda native: asked.append(native) or verdict  # noqa: E731 (a stand-in for the ranks' all-reduce)
        optimizer = build_optimizer(model, TrainConfig(optimizer="muon"), torch.device("cpu"), agree=agree)
        assert asked == [native_bf16()]  # asked once, with this machine's own answer
        assert optimizer.parts[0][0].ns_dtype == expected  # and the ranks' common answer decides


def test_loading_a_state_keeps_the_chosen_dtype():
    from gptkit.train.muon import Muon

    params = [torch.nn.Parameter(m) for m in matrices()]
    optimizer = Muon(params, ns_dtype=torch.float32)
    optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # torch calls __setstate__ here
    assert optimizer.ns_dtype == torch.float32
