"""LoRA adapters exported in PEFT's layout: PEFT, on the exported base model, gives gptkit's logits.

Tiny random transformers models (GPT-2 and Llama with grouped-query attention) are imported, LoRA-trained
with gptkit (on text, and on chat data that adds two tokens), their adapters randomised so that every
number matters, then exported and loaded with `peft.PeftModel.from_pretrained`.
"""

import pytest
import torch
from helpers import tiny_config, tiny_hf_model

import gptkit
from gptkit.atomic import FILE_MODE, FOLDER_MODE
from gptkit.checkpoint import WEIGHTS_FILE, load_model, read_run_config, save_weights
from gptkit.hf import export_hf, import_hf
from gptkit.hf.peft import export_peft
from gptkit.lora import LoRALinear
from gptkit.tokenizer import load_tokenizer
from gptkit.train.loop import train

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


def randomise_adapters(run_dir) -> None:
    """Give every adapter and added row random values (training a few steps leaves B tiny)."""
    config = read_run_config(run_dir)
    model = load_model(run_dir, config)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.copy_(torch.randn_like(param) * (0.3 if "lora_B" in name else 0.05) + param)
    save_weights(model, run_dir / WEIGHTS_FILE)


CASES = [
    ("gpt2", "text", "qkv,proj,mlp", True),
    ("gpt2", "text", "q,v,head", True),
    ("gpt2", "chat", "k,mlp_proj", True),
    ("llama", "text", "qkv,proj,mlp,head", False),
    ("llama", "text", "q,v", True),
    ("llama", "chat", "v,gate", False),
    ("gpt2", "chat", "qkv,head", True),  # an adapted head and added rows: PEFT applies both to those rows
    ("llama", "chat", "proj", True),
]


@pytest.mark.parametrize("kind, data, targets, tied", CASES)
def test_peft_loads_the_adapters_with_gptkits_logits(kind, data, targets, tied, tmp_path, small_data, chat_data):
    tokenizer = load_tokenizer(small_data)
    # a model as large as the tokenizer: chat data (two more tokens) grows it, and those rows train
    base = tiny_hf_model(kind, tokenizer.vocab_size if data == "chat" else 96, tied)
    base.save_pretrained(tmp_path / "hf")
    import_hf(tmp_path / "hf", tmp_path / "imported", tokenizer=small_data / "tokenizer.json", echo=lambda x: None)
    folder = chat_data if data == "chat" else small_data
    overrides = ["lora.r=4", f"lora.targets={targets}", "train.max_iters=6", "train.eval_interval=6"]
    config = tiny_config(folder, *overrides)
    if data == "chat":
        config.train.objective = "sft"
    config.model = read_run_config(tmp_path / "imported").model
    train(config, tmp_path / "lora", init_from=tmp_path / "imported", echo=lambda line: None, progress=False)
    randomise_adapters(tmp_path / "lora")

    export_hf(tmp_path / "imported", tmp_path / "hf_base")
    export_peft(tmp_path / "lora", tmp_path / "adapters", echo=lambda line: None)
    export_peft(tmp_path / "lora", tmp_path / "adapters", echo=lambda line: None)  # an earlier export is replaced
    assert (tmp_path / "adapters").stat().st_mode & 0o777 == FOLDER_MODE  # not mkdtemp's 0700
    assert all(path.stat().st_mode & 0o777 == FILE_MODE for path in (tmp_path / "adapters").iterdir())
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf_base")
    vocab = read_run_config(tmp_path / "lora").model.vocab_size
    if data == "chat":
        assert vocab == tokenizer.vocab_size + 2
        hf.resize_token_embeddings(vocab)
    tuned = peft.PeftModel.from_pretrained(hf, tmp_path / "adapters").eval()

    ours = load_model(tmp_path / "lora", read_run_config(tmp_path / "lora")).eval()
    assert any(isinstance(m, LoRALinear) for m in ours.modules())
    idx = torch.randint(0, vocab, (2, 16))
    idx[:, -2:] = torch.tensor([vocab - 2, vocab - 1])  # the added tokens, where there are any
    with torch.no_grad():
        mine, theirs = ours(idx)[0], tuned(idx).logits
        assert torch.allclose(mine, theirs, atol=1e-4), (mine - theirs).abs().max()
        merged = gptkit.load(tmp_path / "lora", device="cpu").model  # adapters merged in
        # Random adapters this large (B ~ 0.3, scale 4) make big updates; float32 rounding of the merged weights
        # reaches 1.2e-5 in one case. Trained adapters agree within 1e-5 (tests/test_lora.py).
        assert torch.allclose(merged(idx)[0], mine, atol=5e-5), (merged(idx)[0] - mine).abs().max()


def test_what_peft_cannot_hold_is_refused(tmp_path, small_data, chat_data, capsys):
    """Added token rows on an untied head that also has an adapter: PEFT wraps the head in one or the other."""
    from gptkit.cli import main

    tokenizer = load_tokenizer(small_data)
    tiny_hf_model("llama", tokenizer.vocab_size, tied=False).save_pretrained(tmp_path / "hf")
    import_hf(tmp_path / "hf", tmp_path / "imported", tokenizer=small_data / "tokenizer.json", echo=lambda x: None)
    config = tiny_config(chat_data, "lora.r=2", "lora.targets=q,head", "train.max_iters=2", "train.eval_interval=2")
    config.train.objective = "sft"
    config.model = read_run_config(tmp_path / "imported").model
    train(config, tmp_path / "lora", init_from=tmp_path / "imported", echo=lambda line: None, progress=False)
    capsys.readouterr()
    assert main(["export", str(tmp_path / "lora"), "--format", "peft", "--out", str(tmp_path / "adapters")]) == 2
    err = capsys.readouterr().err
    assert "PEFT cannot put the added tokens' rows on an untied head" in err and err.count("\n") == 1
    assert not (tmp_path / "adapters").exists()
    assert main(["export", str(tmp_path / "lora"), "--format", "hf", "--out", str(tmp_path / "whole")]) == 0
