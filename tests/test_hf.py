"""Hugging Face interop: parity both ways on random tiny GPT-2 and Llama models, exact round trips,
fine-tuning an imported model, and clear refusals of corrupt or unsupported checkpoints."""

import json
import pickle

import pytest
import torch
from helpers import tiny_hf_model
from safetensors.torch import load_file, save_file

import gptkit
from gptkit.checkpoint import save_weights, write_run_config
from gptkit.config import GPTConfig, RunConfig
from gptkit.errors import GptkitError
from gptkit.generate import generate_tokens
from gptkit.hf import export_hf, import_hf
from gptkit.model import GPT
from gptkit.tokenizer import load_tokenizer

transformers = pytest.importorskip("transformers")
VOCAB = 96


def hf_model(kind: str, tied: bool):
    return tiny_hf_model(kind, VOCAB, tied)


def ours_vs_hf(ours: GPT, hf) -> None:
    idx = torch.randint(0, VOCAB, (2, 12))
    with torch.no_grad():
        assert torch.allclose(ours.eval()(idx)[0], hf(idx).logits, atol=1e-4)
    prompt = idx[:1, :8]
    mine = torch.cat(list(generate_tokens(ours, prompt, 50, temperature=0)), dim=1)
    theirs = hf.generate(prompt, max_new_tokens=50, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert torch.equal(mine[0], theirs[0, 8:])


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("tied", [True, False])
def test_import_gives_the_same_logits_and_greedy_text(kind, tied, tmp_path):
    model = hf_model(kind, tied)
    model.save_pretrained(tmp_path / "hf")
    import_hf(tmp_path / "hf", tmp_path / "run", echo=lambda line: None)
    run = gptkit.load(tmp_path / "run", device="cpu")  # compared with HF on the CPU
    assert run.tokenizer is None  # a folder without tokenizer files: weights alone
    assert run.config.model.tie_embeddings == tied
    ours_vs_hf(run.model, model)


def make_run(folder, config: GPTConfig, tokenizer) -> GPT:
    torch.manual_seed(1)
    model = GPT(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.02)
    write_run_config(folder, RunConfig(model=config))
    save_weights(model, folder / "model.safetensors")
    tokenizer.save(folder / "tokenizer.json")
    return model


LLAMA = dict(pos="rope", norm="rmsnorm", mlp="swiglu", bias=False, n_kv_head=2, rope_theta=5000.0)


@pytest.mark.parametrize(
    "options",
    [{}, {"tie_embeddings": False}, LLAMA, {**LLAMA, "tie_embeddings": False}],
    ids=["gpt2-tied", "gpt2-untied", "llama-tied", "llama-untied"],
)
def test_export_loads_in_transformers_with_the_same_logits(options, tmp_path, small_data):
    tok = load_tokenizer(small_data)
    config = GPTConfig(vocab_size=VOCAB, block_size=64, n_layer=2, n_head=4, n_embd=32, **options)
    ours = make_run(tmp_path / "run", config, tok)
    export_hf(tmp_path / "run", tmp_path / "hf")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf", local_files_only=True).eval()
    assert type(hf).__name__ == ("LlamaForCausalLM" if options.get("pos") == "rope" else "GPT2LMHeadModel")
    ours_vs_hf(ours, hf)
    fast = transformers.PreTrainedTokenizerFast.from_pretrained(tmp_path / "hf", local_files_only=True)
    text = "ROMEO: what light?\nJULIET: none."
    assert fast(text)["input_ids"] == tok.encode(text) and fast.decode(tok.encode(text)) == text
    assert json.loads((tmp_path / "hf" / "generation_config.json").read_text())["do_sample"] is False


def test_round_trip_is_bit_exact_with_the_tokenizer(tmp_path, trained_run):
    export_hf(trained_run, tmp_path / "hf")
    import_hf(tmp_path / "hf", tmp_path / "back")
    a, b = load_file(trained_run / "model.safetensors"), load_file(tmp_path / "back" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_tokenizer(tmp_path / "back").to_dict() == load_tokenizer(trained_run).to_dict()


def test_options_transformers_cannot_hold_are_named(tmp_path, small_data):
    tok = load_tokenizer(small_data)
    for options, blocker in [
        ({"pos": "none"}, "model.pos"),
        ({"qk_norm": True}, "model.qk_norm"),
        ({"mlp": "relu2"}, "model.mlp"),
        ({"bias": False}, "model.bias"),
        ({**LLAMA, "norm": "layernorm"}, "model.norm"),
    ]:
        folder = tmp_path / blocker / str(len(options))
        make_run(folder, GPTConfig(vocab_size=VOCAB, block_size=16, n_layer=1, n_head=2, n_embd=16, **options), tok)
        with pytest.raises(GptkitError, match=blocker.replace(".", "\\.")):
            export_hf(folder, tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_fine_tuning_an_imported_model_lowers_its_val_loss(tmp_path, small_data, small_text_file):
    from helpers import tiny_config

    from gptkit.data.prepare import prepare
    from gptkit.train.loop import train
    from gptkit.train.metrics import read_metrics

    tok = load_tokenizer(small_data)
    model = hf_model("llama", tied=False)
    model.save_pretrained(tmp_path / "hf")
    import_hf(tmp_path / "hf", tmp_path / "imported", tokenizer=small_data / "tokenizer.json")
    prepare([str(small_text_file)], tmp_path / "data", tokenizer=str(tmp_path / "imported" / "tokenizer.json"))
    config = tiny_config(
        tmp_path / "data", "train.max_iters=40", "train.lr=3e-3", "train.warmup_iters=0", "train.eval_interval=40"
    )
    config.model = gptkit.load(tmp_path / "imported").config.model  # the imported shape
    train(config, tmp_path / "tuned", init_from=tmp_path / "imported", echo=lambda line: None, progress=False)
    evals = [r["val_loss"] for r in read_metrics(tmp_path / "tuned" / "metrics.jsonl") if r["kind"] == "eval"]
    assert tok.vocab_size < VOCAB  # the model's vocabulary may be larger than the tokenizer's
    assert evals[-1] < evals[0] - 0.3


@pytest.fixture
def saved_gpt2(tmp_path):
    hf_model("gpt2", tied=True).save_pretrained(tmp_path / "hf")
    return tmp_path / "hf"


def rewrite(folder, change) -> None:
    tensors = load_file(folder / "model.safetensors")
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"))


class NotATensor:
    pass


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing tensor", "has no tensor `transformer.h.1.mlp.c_fc.weight`"),
        ("wrong shape", r"the token embedding is \(\d+, 16\)"),
        ("wrong shape in a layer", "has shape"),
        ("bool weights", r"tensor `transformer.h.0.attn.c_attn.(weight|bias)` is bool; gptkit imports float32"),
        ("int weights", "tensor `transformer.wte.weight` is int64; gptkit imports float32"),
        ("unknown model_type", "model_type 'bert' is not supported"),
        ("pickle with objects", "not a plain-tensor checkpoint"),
        ("no weights", "no model.safetensors"),
    ],
)
def test_corrupt_or_unsupported_checkpoints_are_refused(case, expected, saved_gpt2, tmp_path):
    if case == "missing tensor":
        rewrite(saved_gpt2, lambda t: t.pop("transformer.h.1.mlp.c_fc.weight"))
    elif case == "wrong shape":
        rewrite(saved_gpt2, lambda t: t.update({"transformer.wte.weight": torch.zeros(VOCAB, 16)}))
    elif case == "wrong shape in a layer":
        rewrite(saved_gpt2, lambda t: t.update({"transformer.h.1.mlp.c_fc.weight": torch.zeros(3, 5)}))
    elif case == "bool weights":
        rewrite(saved_gpt2, lambda t: t.update({k: v > 0 for k, v in t.items()}))
    elif case == "int weights":
        rewrite(saved_gpt2, lambda t: t.update({"transformer.wte.weight": t["transformer.wte.weight"].long()}))
    elif case == "unknown model_type":
        raw = json.loads((saved_gpt2 / "config.json").read_text())
        (saved_gpt2 / "config.json").write_text(json.dumps({**raw, "model_type": "bert"}))
    elif case == "pickle with objects":
        (saved_gpt2 / "model.safetensors").unlink()
        with open(saved_gpt2 / "pytorch_model.bin", "wb") as f:
            pickle.dump({"weight": NotATensor()}, f)
    else:
        (saved_gpt2 / "model.safetensors").unlink()
    with pytest.raises(GptkitError, match=expected) as err:
        import_hf(saved_gpt2, tmp_path / "run")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.*"))


def test_a_pytorch_bin_of_plain_tensors_imports(saved_gpt2, tmp_path):
    tensors = load_file(saved_gpt2 / "model.safetensors")
    (saved_gpt2 / "model.safetensors").unlink()
    torch.save(tensors, saved_gpt2 / "pytorch_model.bin")
    import_hf(saved_gpt2, tmp_path / "run", echo=lambda line: None)
    assert gptkit.load(tmp_path / "run").config.model.n_layer == 2


def test_the_command_line_round_trip_and_fine_tune(tmp_path, trained_run, small_text_file, capsys):
    from helpers import TINY

    from gptkit.cli import main

    assert main(["export", str(trained_run), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert "from_pretrained" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imported")]) == 0
    assert (
        main(
            [
                "prepare",
                str(small_text_file),
                "--tokenizer",
                str(tmp_path / "imported" / "tokenizer.json"),
                "--out",
                str(tmp_path / "data"),
            ]
        )
        == 0
    )
    sets = [s for s in TINY if not s.startswith("model.")] + ["train.lr=3e-5", "train.max_iters=5"]  # as in README
    assert (
        main(
            [
                "train",
                "--init-from",
                str(tmp_path / "imported"),
                "--data",
                str(tmp_path / "data"),
                "--out",
                str(tmp_path / "tuned"),
                "--set",
                *sets,
            ]
        )
        == 0
    )
    assert gptkit.load(tmp_path / "tuned").config.model.n_layer == 2
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imported")]) == 2  # not over a run
    assert "not an empty folder" in capsys.readouterr().err


def test_export_never_replaces_the_run_or_an_unrelated_folder(tmp_path, trained_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    with pytest.raises(GptkitError, match="would replace the run"):
        export_hf(run, run)
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "keep.txt").write_text("mine")
    with pytest.raises(GptkitError, match="not an earlier export"):
        export_hf(run, tmp_path / "precious")
    assert (tmp_path / "precious" / "keep.txt").read_text() == "mine"
    export_hf(run, tmp_path / "hf")
    export_hf(run, tmp_path / "hf")  # replacing an earlier export is fine
    assert (tmp_path / "hf" / "model.safetensors").exists() and (run / "checkpoint.safetensors").exists()


def test_llama_round_trip_is_bit_exact_and_keeps_a_char_unknown(tmp_path):
    from gptkit.tokenizer.char import CharTokenizer

    tok = CharTokenizer.from_text("abc de", unknown="?")
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=4, n_embd=32, **LLAMA)
    make_run(tmp_path / "run", config, tok)
    export_hf(tmp_path / "run", tmp_path / "hf")
    import_hf(tmp_path / "hf", tmp_path / "back")
    a, b = load_file(tmp_path / "run" / "model.safetensors"), load_file(tmp_path / "back" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_tokenizer(tmp_path / "back").to_dict() == tok.to_dict()


def test_older_and_odd_configs(tmp_path):
    model = hf_model("llama", tied=True)
    model.save_pretrained(tmp_path / "llama")
    raw = json.loads((tmp_path / "llama" / "config.json").read_text())
    raw.pop("attention_bias", None), raw.pop("mlp_bias", None)  # configs saved by older transformers lack them
    (tmp_path / "llama" / "config.json").write_text(json.dumps(raw))
    import_hf(tmp_path / "llama", tmp_path / "run", echo=lambda line: None)
    ours_vs_hf(gptkit.load(tmp_path / "run", device="cpu").model, model)  # HF runs on the CPU

    hf_model("gpt2", tied=True).save_pretrained(tmp_path / "gpt2")
    raw = json.loads((tmp_path / "gpt2" / "config.json").read_text())
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({**raw, "scale_attn_by_inverse_layer_idx": True}))
    with pytest.raises(GptkitError, match="scale_attn_by_inverse_layer_idx"):
        import_hf(tmp_path / "gpt2", tmp_path / "run2")


def test_extra_tensors_are_refused(saved_gpt2, tmp_path):
    rewrite(saved_gpt2, lambda t: t.update({"transformer.h.1.ln_3.weight": torch.ones(32)}))
    with pytest.raises(GptkitError, match="does not account for, e.g. `transformer.h.1.ln_3.weight`"):
        import_hf(saved_gpt2, tmp_path / "run")
    rewrite(saved_gpt2, lambda t: t.update({"transformer.h.2.ln_1.weight": torch.ones(32)}))
    with pytest.raises(GptkitError, match="says n_layer=2, but the weights hold 3 layers"):
        import_hf(saved_gpt2, tmp_path / "run")


def test_tokenizers_from_elsewhere(saved_gpt2, tmp_path, trained_run):
    # a tokenizer.json we cannot read (a SentencePiece-style normalizer): the weights come alone, with a note
    export_hf(trained_run, tmp_path / "exported")
    raw = json.loads((tmp_path / "exported" / "tokenizer.json").read_text())
    (saved_gpt2 / "tokenizer.json").write_text(
        json.dumps({**raw, "normalizer": {"type": "NFKC"}, "model": {"type": "BPE", "vocab": {}, "merges": []}})
    )
    notes = []
    import_hf(saved_gpt2, tmp_path / "alone", echo=notes.append)
    assert not (tmp_path / "alone" / "tokenizer.json").exists() and "could not be read" in notes[0]
    # --tokenizer takes a Hugging Face tokenizer.json; a model vocabulary (96) larger than it (65) samples fine
    import_hf(saved_gpt2, tmp_path / "with", tokenizer=tmp_path / "exported" / "tokenizer.json")
    run = gptkit.load(tmp_path / "with")
    assert run.tokenizer.to_dict() == load_tokenizer(trained_run).to_dict()
    assert len(run.generate("ROMEO:", max_new_tokens=300, temperature=2.0, seed=0)) == 300
