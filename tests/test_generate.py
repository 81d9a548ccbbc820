import pytest
import torch

from gptkit.config import GPTConfig
from gptkit.errors import GptkitError
from gptkit.generate import filter_logits, generate_tokens
from gptkit.model import GPT


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32)).eval()


def run(model, prompt, n=24, **kw):
    return torch.cat(list(generate_tokens(model, prompt, n, **kw)), dim=1)


def test_top_k_1_equals_greedy(model):
    prompt = torch.randint(0, 65, (2, 5))
    greedy = run(model, prompt, temperature=0)
    for seed in range(3):
        assert torch.equal(run(model, prompt, temperature=1.5, top_k=1, seed=seed), greedy)


def test_greedy_is_the_argmax_of_the_model(model):
    prompt = torch.randint(0, 65, (1, 5))
    first = run(model, prompt, n=1, temperature=0)
    assert first.item() == model(prompt)[0][0, -1].argmax().item()


def test_seeded_sampling_is_reproducible_and_seeds_differ(model):
    prompt = torch.zeros((1, 1), dtype=torch.long)
    a = run(model, prompt, temperature=1.0, seed=1)
    assert torch.equal(a, run(model, prompt, temperature=1.0, seed=1))
    assert not torch.equal(a, run(model, prompt, temperature=1.0, seed=2))


def test_generation_continues_past_the_block_size(model):
    out = run(model, torch.zeros((1, 10), dtype=torch.long), n=40, seed=0)
    assert out.shape == (1, 40)


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([[0.05, 0.5, 0.15, 0.3]]))
    kept = torch.isfinite(filter_logits(logits, 1.0, None, 0.8))
    assert kept.tolist() == [[False, True, False, True]]  # 0.5 + 0.3 reaches 0.8
    assert torch.isfinite(filter_logits(logits, 1.0, None, 0.1)).sum() == 1  # the top token always stays


def test_top_k_keeps_k_tokens():
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    assert torch.isfinite(filter_logits(logits, 1.0, 2, None)).tolist() == [[False, True, True, False]]


@pytest.mark.parametrize("kw", [{"temperature": -1}, {"top_k": 0}, {"top_p": 1.5}])
def test_bad_sampling_arguments_are_clear_errors(model, kw):
    with pytest.raises(GptkitError):
        run(model, torch.zeros((1, 1), dtype=torch.long), **kw)


def test_repetition_penalty_known_answer():
    from gptkit.generate import penalize_repeats

    logits = torch.tensor([[2.0, -2.0, 1.0]])
    out = penalize_repeats(logits, torch.tensor([[0, 1, 1]]), 2.0)  # tokens 0 and 1 seen (1 twice)
    assert out.tolist() == [[1.0, -4.0, 1.0]]  # positive halved, negative doubled, unseen kept


def test_bad_ids_are_clear_errors(model):
    for bad in (torch.zeros(4, dtype=torch.long), torch.zeros((1, 4)), torch.full((1, 4), 99)):
        with pytest.raises(GptkitError, match="generate:"):
            next(generate_tokens(model, bad, 1))
