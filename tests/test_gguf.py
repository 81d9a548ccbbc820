"""GGUF export: the file read back has the expected tensors, and llama.cpp (through llama-cpp-python) tokenizes,
scores and continues text as gptkit does, for GPT-2-style and Llama-style runs with BPE and char tokenizers."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import gptkit
from gptkit.chat.template import conversation_from, render_prompt
from gptkit.checkpoint import save_weights, weights_state, write_run_config
from gptkit.cli import main
from gptkit.config import GPTConfig, RunConfig
from gptkit.errors import GptkitError
from gptkit.gguf_export import export_gguf
from gptkit.model import GPT, apply_rope, rope_tables
from gptkit.tokenizer.bpe_train import train_bpe
from gptkit.tokenizer.char import CharTokenizer

gguf = pytest.importorskip("gguf")

FIXTURES = Path(__file__).parent / "fixtures"
KOREAN = (FIXTURES / "korean" / "hyeon_jingeon_unsu_joeun_nal.txt").read_text(encoding="utf-8")[:6000]
CHINESE = "我们的模型在中文数据上训练。今天天气很好，我们去公园散步吧。小明说：你好，世界！"
TEXTS = ["ROMEO: what light through yonder window breaks?\nJULIET: 'tis I.", KOREAN[200:260], CHINESE[:24]]
LLAMA = dict(pos="rope", norm="rmsnorm", mlp="swiglu", bias=False, n_kv_head=2, rope_theta=5000.0)
KINDS = {  # (tokenizer, model options, llama.cpp tokenizer model)
    "gpt2-char": ("char", {}, "gpt2"),
    "gpt2-char-ascii": ("char-ascii", {}, "rwkv"),  # no end-of-text token: llama.cpp's rwkv model, no EOS
    "gpt2-bpe-untied-nobias-gqa": ("bpe-gpt2", {"tie_embeddings": False, "bias": False, "n_kv_head": 2}, "gpt2"),
    "llama-char": ("char", LLAMA, "gpt2"),
    "llama-bpe-untied-bias": ("bpe-gpt4", {**LLAMA, "tie_embeddings": False, "bias": True}, "gpt2"),
}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory, shakespeare_text):
    corpus = tmp_path_factory.mktemp("corpus") / "mixed.txt"
    text = shakespeare_text[:30000] + KOREAN + CHINESE
    corpus.write_text(text, encoding="utf-8")
    return {
        "char": CharTokenizer(sorted(set(text)), specials=["<|endoftext|>"]),
        "char-ascii": CharTokenizer.from_text(shakespeare_text),
        "bpe-gpt2": train_bpe([corpus], 600, pattern="gpt2", specials=["<|endoftext|>"], progress=False),
        "bpe-gpt4": train_bpe([corpus], 700, pattern="gpt4", specials=["<|endoftext|>"], progress=False),
    }


def make_run(folder: Path, tokenizer, spare_rows: int = 3, **options) -> GPT:
    """A random run whose vocabulary has `spare_rows` more rows than its tokenizer (padding, as models have)."""
    config = GPTConfig(vocab_size=tokenizer.vocab_size + spare_rows, block_size=96, n_layer=2, n_head=4, n_embd=64)
    for key, value in options.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = GPT(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)  # larger than the init, so no weight is left at 0 or 1
    write_run_config(folder, RunConfig(model=config))
    save_weights(model, folder / "model.safetensors")
    tokenizer.save(folder / "tokenizer.json")
    return model.eval()


@pytest.fixture(scope="module", params=list(KINDS))
def exported(request, tokenizers, tmp_path_factory):
    tokenizer_kind, options, _ = KINDS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    model = make_run(folder / "run", tokenizers[tokenizer_kind], **options)
    out = export_gguf(folder / "run", folder / "model.gguf", echo=lambda line: None)
    return request.param, folder / "run", model, out


def reader_tensors(path) -> dict[str, np.ndarray]:
    """Tensors as GGUFReader gives them, in PyTorch's (out, in) order (GGUF lists dims innermost first)."""
    reader = gguf.GGUFReader(path)
    return {t.name: np.array(t.data).reshape(list(reversed(t.shape.tolist()))) for t in reader.tensors}


def expected_tensors(model: GPT) -> dict[str, np.ndarray]:
    """Every tensor llama.cpp's gpt2 or llama graph loads, from our weights, written out here by hand; the
    Llama q and k rows are left out (checked by what they compute, below)."""
    ours = {name: t.numpy() for name, t in weights_state(model).items()}
    m, llama = model.config, model.config.pos == "rope"
    zeros = np.zeros
    out = {"token_embd.weight": ours["transformer.wte.weight"], "output_norm.weight": ours["transformer.ln_f.weight"]}
    if not m.tie_embeddings:
        out["output.weight"] = ours["lm_head.weight"]
    if not llama:
        positions = zeros((4096, m.n_embd), np.float32)  # padded with zeros to the 4,096 tokens llama.cpp's tools open
        positions[: m.block_size] = ours["transformer.wpe.weight"]
        out["position_embd.weight"] = positions
        out["output_norm.bias"] = ours.get("transformer.ln_f.bias", zeros(m.n_embd, np.float32))
    parts = {"ln_1": "attn_norm", "attn.c_proj": "attn_output", "ln_2": "ffn_norm", "mlp.c_fc": "ffn_up"}
    parts |= {"mlp.c_proj": "ffn_down"} | ({"mlp.c_gate": "ffn_gate"} if llama else {"attn.c_attn": "attn_qkv"})
    for i in range(m.n_layer):
        for our_name, name in parts.items():
            weight = ours[f"transformer.h.{i}.{our_name}.weight"]
            out[f"blk.{i}.{name}.weight"] = weight
            bias = ours.get(f"transformer.h.{i}.{our_name}.bias")
            if bias is not None or not llama:  # llama.cpp's gpt2 graph needs every bias: zeros where none
                out[f"blk.{i}.{name}.bias"] = bias if bias is not None else zeros(weight.shape[0], np.float32)
        if llama:
            hs, kv = m.n_embd // m.n_head, m.n_kv_head
            for kind in ("weight", "bias") if m.bias else ("weight",):
                v = ours[f"transformer.h.{i}.attn.c_attn.{kind}"][m.n_embd + kv * hs :]
                out[f"blk.{i}.attn_v.{kind}"] = v
    return out


def test_the_file_holds_every_tensor_with_its_name_shape_and_values(exported):
    kind, run_dir, model, path = exported
    tensors = reader_tensors(path)
    expected = expected_tensors(model)
    m = model.config
    llama = m.pos == "rope"
    rope_rows = {f"blk.{i}.attn_{x}.{k}" for i in range(m.n_layer) for x in "qk" for k in ("weight", "bias")}
    rope_rows = {name for name in rope_rows if llama and (name.endswith("weight") or m.bias)}
    assert set(tensors) == set(expected) | rope_rows
    for name, values in expected.items():
        assert tensors[name].dtype == np.float32 and tensors[name].shape == values.shape, name
        np.testing.assert_array_equal(tensors[name], values, err_msg=name)
    if not llama:
        return
    # Llama: q and k rows interleaved so that llama.cpp's rotation of adjacent pairs is ours of split halves.
    ours = {name: t.numpy() for name, t in weights_state(model).items()}
    hs, kv = m.n_embd // m.n_head, m.n_kv_head
    q, k, _ = np.split(ours["transformer.h.0.attn.c_attn.weight"], [m.n_embd, m.n_embd + kv * hs])
    x = torch.randn(5, m.n_embd)
    cos, sin = rope_tables(hs, 5, m.rope_theta)
    for ours_rows, name, heads in ((q, "attn_q", m.n_head), (k, "attn_k", kv)):
        rotated = apply_rope((x @ torch.from_numpy(ours_rows).T).view(5, heads, hs).transpose(0, 1), cos, sin)
        theirs = (x @ torch.from_numpy(tensors[f"blk.0.{name}.weight"]).T).view(5, heads, hs // 2, 2)
        even, odd = theirs[..., 0], theirs[..., 1]  # llama.cpp's "normal" RoPE turns (2i, 2i+1)
        pairs = torch.stack([even * cos[:, None] - odd * sin[:, None], odd * cos[:, None] + even * sin[:, None]], -1)
        turned = pairs.transpose(0, 1).permute(0, 1, 3, 2).reshape(heads, 5, hs)
        torch.testing.assert_close(turned, rotated, atol=1e-5, rtol=1e-5)
    if m.bias:  # the same interleaving of the bias rows
        q_bias = ours["transformer.h.0.attn.c_attn.bias"][: m.n_embd].reshape(m.n_head, 2, hs // 2)
        np.testing.assert_array_equal(tensors["blk.0.attn_q.bias"], q_bias.swapaxes(1, 2).reshape(-1))


def test_metadata_says_what_llama_cpp_reads(exported):
    kind, run_dir, model, path = exported
    reader = gguf.GGUFReader(path)
    fields = {name: field.contents() for name, field in reader.fields.items()}
    arch = "llama" if kind.startswith("llama") else "gpt2"
    m = model.config
    assert fields["general.architecture"] == arch
    assert fields[f"{arch}.context_length"] == (m.block_size if arch == "llama" else 4096)
    assert fields["gptkit.block_size"] == m.block_size and fields[f"{arch}.block_count"] == m.n_layer
    assert fields[f"{arch}.attention.head_count_kv"] == (m.n_kv_head or m.n_head)
    assert len(fields["tokenizer.ggml.tokens"]) == m.vocab_size
    assert fields["tokenizer.ggml.model"] == KINDS[kind][2]
    assert fields["tokenizer.ggml.add_bos_token"] is False


llama_cpp = None


@pytest.fixture(scope="module")
def llama():
    global llama_cpp
    llama_cpp = pytest.importorskip("llama_cpp")

    def load(path, **options):
        # float32 keys and values: llama.cpp's default f16 cache would round them, and logits are compared to 1e-3
        f32 = llama_cpp.GGML_TYPE_F32
        return llama_cpp.Llama(
            str(path), n_ctx=256, logits_all=True, verbose=False, type_k=f32, type_v=f32, seed=0, **options
        )

    return load


@pytest.mark.slow
def test_llama_cpp_tokenizes_scores_and_continues_as_gptkit(exported, llama):
    kind, run_dir, model, path = exported
    run = gptkit.load(run_dir, device="cpu")
    llm = llama(path)
    for text in TEXTS[:1] if "ascii" in kind else TEXTS:
        assert llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) == run.tokenizer.encode(text), text
    prompt = run.tokenizer.encode(TEXTS[0])[:40]
    llm.reset()
    llm.eval(prompt)
    theirs = np.asarray(llm.scores[: len(prompt)])
    with torch.no_grad():
        ours = model(torch.tensor([prompt]))[0][0].numpy()
    np.testing.assert_allclose(theirs, ours, atol=1e-3, rtol=0)
    llm.reset()
    continuation = []
    for token in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0):
        continuation.append(token)
        if len(continuation) == 30:
            break
    mine = run.generate_ids(torch.tensor([prompt]), 30, temperature=0)
    assert continuation == mine[0].tolist()
    # Past the block size gptkit slides its window; llama.cpp goes on (no abort on a missing position).
    llm.reset()
    longer = llm.create_completion(prompt, max_tokens=200, temperature=0.0, repeat_penalty=1.0)
    assert longer["usage"]["completion_tokens"] > model.config.block_size


@pytest.fixture(scope="module")
def closing_chat_run(tmp_path_factory, trained_run, chat_data):
    """The tiny run fine-tuned long enough on reversals that it closes its turn with <|im_end|>."""
    out = tmp_path_factory.mktemp("runs") / "chat"
    args = ["train", "--data", str(chat_data), "--init-from", str(trained_run), "--out", str(out), "--preset", "sft"]
    settings = ["train.max_iters=300", "train.lr=3e-3", "train.eval_interval=300", "train.device=cpu"]
    assert main([*args, "--set", *settings]) == 0
    return out


@pytest.mark.slow
def test_llama_cpp_chat_uses_the_template_and_stops_at_the_end_of_turn(closing_chat_run, tmp_path, llama):
    chat_run = closing_chat_run
    path = export_gguf(chat_run, tmp_path / "chat.gguf", echo=lambda line: None)
    fields = {name: field.contents() for name, field in gguf.GGUFReader(path).fields.items()}
    run = gptkit.load(chat_run, device="cpu")
    assert fields["tokenizer.ggml.eos_token_id"] == run.tokenizer.specials["<|im_end|>"]
    llm = llama(path)
    formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(fields["tokenizer.chat_template"], "", "")
    stopped = 0
    for word in ("abc", "hgf", "bad", "ceg"):
        messages = [{"role": "user", "content": word}]
        prompt = formatter(messages=messages).prompt
        ours = render_prompt(conversation_from(messages), run.tokenizer)
        assert llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True) == ours
        reply = llm.create_chat_completion(messages, max_tokens=8, temperature=0.0, repeat_penalty=1.0)
        choice = reply["choices"][0]
        assert choice["message"]["content"] == run.chat(messages, 8, temperature=0)
        ids = run.generate_ids(torch.tensor([ours]), 8, temperature=0)[0]
        ended = run.tokenizer.specials["<|im_end|>"] in ids.tolist()
        assert choice["finish_reason"] == ("stop" if ended else "length")
        stopped += ended
    assert stopped >= 2  # the fine-tuned model closes its turn, and llama.cpp stops there


@pytest.mark.slow
def test_f16_and_q8_0_load_and_stay_close(tokenizers, tmp_path, llama):
    model = make_run(tmp_path / "run", tokenizers["bpe-gpt4"], **LLAMA)
    prompt = tokenizers["bpe-gpt4"].encode(TEXTS[0])[:30]
    with torch.no_grad():
        ours = model(torch.tensor([prompt]))[0][0].numpy()
    sizes = {}
    for outtype, tolerance in (("f16", 1e-2), ("q8_0", 5e-2)):
        assert (
            main(
                [
                    "export",
                    str(tmp_path / "run"),
                    "--format",
                    "gguf",
                    "--outtype",
                    outtype,
                    "--out",
                    str(tmp_path / f"{outtype}.gguf"),
                ]
            )
            == 0
        )
        sizes[outtype] = (tmp_path / f"{outtype}.gguf").stat().st_size
        llm = llama(tmp_path / f"{outtype}.gguf")
        llm.eval(prompt)
        np.testing.assert_allclose(np.asarray(llm.scores[: len(prompt)]), ours, atol=tolerance, rtol=0)
    assert sizes["q8_0"] < sizes["f16"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"qk_norm": True}, "`model.qk_norm`=true has no llama.cpp architecture"),
        ({"logit_softcap": 30.0}, "`model.logit_softcap` has no llama.cpp architecture"),
        ({"causal": False}, "a masked LM"),
        ({"mlp": "relu2"}, "needs `model.mlp`=gelu"),
        ({**LLAMA, "norm": "layernorm"}, "needs `model.norm`=rmsnorm"),
        ({"pos": "none"}, "`model.pos`='none' has no llama.cpp architecture"),
    ],
)
def test_options_llama_cpp_cannot_run_are_named(options, message, tmp_path, tokenizers):
    make_run(tmp_path / "run", tokenizers["char"], **options)
    with pytest.raises(GptkitError, match=message.replace("(", r"\(").replace("$", r"\$")):
        export_gguf(tmp_path / "run", tmp_path / "x.gguf")
    assert not list(tmp_path.glob("*.gguf*")) and not list(tmp_path.glob(".x.gguf*"))


def test_tokenizers_llama_cpp_cannot_match_are_refused(tmp_path, tokenizers, capsys):
    make_run(tmp_path / "a", CharTokenizer.from_text("abc de"))
    with pytest.raises(GptkitError, match="no newline character"):
        export_gguf(tmp_path / "a", tmp_path / "a.gguf")
    custom = train_bpe([FIXTURES / "korean"], 300, pattern=r"\S+|\s+", progress=False)
    make_run(tmp_path / "b", custom)
    with pytest.raises(GptkitError, match="custom pattern, which llama.cpp has no pre-tokenizer for"):
        export_gguf(tmp_path / "b", tmp_path / "b.gguf")
    assert main(["export", str(tmp_path / "b"), "--outtype", "f16", "--out", str(tmp_path / "hf")]) == 2
    assert "--outtype f16: applies to --format gguf only" in capsys.readouterr().err
    weights = tmp_path / "b" / "model.safetensors"  # a slip of --out never replaces what is not a GGUF file
    before = weights.read_bytes()
    assert main(["export", str(tmp_path / "b"), "--format", "gguf", "--out", str(weights)]) == 2
    assert "exists and is not a GGUF file" in capsys.readouterr().err and weights.read_bytes() == before


@pytest.mark.slow
def test_char_vocabularies_llama_cpp_cannot_hang_on(tmp_path, tokenizers, llama):
    """A multi-byte vocabulary is written as merges of bytes: a character outside it (각, where 가 is known)
    falls apart into bytes llama.cpp leaves out, instead of sending its rwkv tokenizer into an endless loop.
    Without an end-of-text token the export says where llama.cpp will stop generating."""
    chars = sorted(set("가나다 abcdefghij\n"))
    notes = []
    make_run(tmp_path / "run", CharTokenizer(chars))
    path = export_gguf(tmp_path / "run", tmp_path / "k.gguf", echo=notes.append)
    assert len(notes) == 1 and f"llama.cpp takes id 11 ({chars[11]!r}) as the end of text" in notes[0]
    script = (
        "import llama_cpp, sys\n"
        f"llm = llama_cpp.Llama({str(path)!r}, verbose=False)\n"
        "print(llm.tokenize('가 각 나'.encode(), add_bos=False, special=False))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    ids = CharTokenizer(chars).encode("가  나")  # 각 left out, as its bytes are no tokens
    assert done.stdout.strip() == str(ids)
