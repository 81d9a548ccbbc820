"""gptkit's Muon (batched Newton-Schulz, no emulated bf16) makes torch.optim.Muon's updates and shares its state."""

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
    for a, b, first in zip(theirs, ours, start):
        moved = (a - first).norm()
        assert moved > 0.05 and (a - b).norm() / moved < 0.02  # the same steps, up to bf16 vs float32
    # either optimizer's checkpoint resumes the other: the same state entries, the same next step
    resumed = Muon([torch.nn.Parameter(p.detach().clone()) for p in theirs], ns_dtype=torch.float32, **options)
    resumed.load_state_dict(torch_muon.state_dict())
    for param, buffer in zip(theirs, [resumed.state[p]["momentum_buffer"] for p in resumed.param_groups[0]["params"]]):
        assert torch.equal(torch_muon.state[param]["momentum_buffer"], buffer)
    torch.optim.Muon(theirs, **options).load_state_dict(our_muon.state_dict())


def test_newton_schulz_runs_in_bf16_only_where_the_cpu_has_it():
    from gptkit.train.muon import newton_schulz_dtype

    expected = torch.bfloat16 if native_bf16() else torch.float32
    assert newton_schulz_dtype(torch.device("cpu")) == expected
