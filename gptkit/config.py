"""Configuration as data: typed dataclasses, TOML files, named presets and `--set key=value` overrides.

`RunConfig` = `GPTConfig` (the network) + `TrainConfig` (the loop) + `data` (prepared datasets, mixed by
weight) + optional `stages` (sequential phases, each with its own data). Values are
resolved in this order, later wins: dataclass defaults < preset < TOML file < `--set`. Key names follow
nanoGPT's where one exists. An unknown key is an error listing the valid ones. This module does no I/O
beyond reading a TOML file and knows nothing of torch.
"""

import dataclasses
import json
import math
import numbers
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from gptkit.errors import ArgumentError, GptkitError
from gptkit.paths import file_problem, shown
from gptkit.presets import PRESETS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def _doc(default, text: str):
    """A dataclass field with a one-line doc (shown by `gptkit train --help-config`)."""
    return field(default=default, metadata={"doc": text})


def check_field_types(settings, section: str) -> None:
    """Every int field holds an int and every float field a finite number (a config built in Python, or read
    from JSON, is not coerced by `--set`'s parser): `nan`, `inf` and `True` are no learning rate."""
    for f in dataclasses.fields(settings):
        value, kind = getattr(settings, f.name), f.type
        if kind in (int, "int") and (not isinstance(value, numbers.Integral) or isinstance(value, bool)):
            raise GptkitError(f"`{section}.{f.name}` must be an integer, got {value!r}")
        if kind in (float, "float") and (
            isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
        ):
            raise GptkitError(f"`{section}.{f.name}` must be a finite number, got {value!r}")
        if kind in (bool, "bool") and not isinstance(value, bool):
            raise GptkitError(f"`{section}.{f.name}` must be true or false, got {value!r}")
        if kind in (str, "str") and not isinstance(value, str):
            raise GptkitError(f"`{section}.{f.name}` must be a string, got {value!r}")


POS_CHOICES = ("learned", "rope", "none")
ARCH_CHOICES = ("gpt", "bigram")
NORM_CHOICES = ("layernorm", "rmsnorm")
MLP_CHOICES = ("gelu", "swiglu", "relu2")
OBJECTIVE_NAMES = ("causal", "mlm", "sft")  # the modules behind them live in gptkit.objectives


@dataclass
class GPTConfig:
    """The network's shape. Defaults are nanoGPT's CPU recipe (also the `cpu-baby` preset)."""

    arch: str = _doc("gpt", "gpt (the transformer) or bigram (a table of next-token logits: the lecture's baseline)")
    vocab_size: int = _doc(0, "tokens in the vocabulary; 0 = take it from the data's tokenizer")
    block_size: int = _doc(64, "context length in tokens")
    n_layer: int = _doc(4, "transformer blocks")
    n_head: int = _doc(4, "attention heads per block")
    n_embd: int = _doc(128, "embedding width; must be divisible by n_head")
    dropout: float = _doc(0.0, "dropout probability (embeddings, attention, residual branches)")
    attn_dropout: float = _doc(
        -1.0, "dropout on attention weights; -1 = `dropout`. On a CPU it triples attention's time (SDPA's slow path)"
    )
    bias: bool = _doc(True, "biases in Linear layers and LayerNorms, as in GPT-2")
    pos: str = _doc("learned", "position information: learned (GPT-2), rope (rotary, Llama) or none")
    norm: str = _doc("layernorm", "layernorm (GPT-2) or rmsnorm (Llama)")
    mlp: str = _doc("gelu", "feed-forward: gelu (GPT-2), swiglu (Llama) or relu2")
    mlp_hidden: int = _doc(0, "feed-forward width; 0 = 4*n_embd (swiglu: 8/3*n_embd rounded up to 64)")
    qk_norm: bool = _doc(False, "normalise queries and keys per head before attention")
    tie_embeddings: bool = _doc(True, "share the token embedding with the output layer")
    n_kv_head: int = _doc(0, "key/value heads for grouped-query attention; 0 = n_head")
    rope_theta: float = _doc(10000.0, "RoPE base frequency")
    norm_eps: float = _doc(1e-5, "epsilon of the norms")
    causal: bool = _doc(True, "each position sees only earlier ones (GPT); false: both sides (BERT-style, for mlm)")
    zero_init_proj: bool = _doc(
        False, "start the projections into the residual stream at zero (blocks start as identity)"
    )
    logit_softcap: float = _doc(0.0, "cap logits smoothly at +-this with cap*tanh(logits/cap) (Gemma 2); 0 = off")

    def attention_dropout(self) -> float:
        """The dropout on attention weights: `attn_dropout`, or `dropout` when that is -1."""
        return self.dropout if self.attn_dropout == -1.0 else self.attn_dropout

    def beyond_gpt2_and_llama(self) -> str | None:
        """The setting that puts this model outside both GPT-2's and Llama's architecture (so no exporter can
        write it), or None."""
        if self.arch == "bigram":
            return "`model.arch`=bigram (a table of next-token logits)"
        if self.qk_norm:
            return "`model.qk_norm`=true"
        if self.logit_softcap > 0:
            return "`model.logit_softcap`"
        if not self.causal:
            return "`model.causal`=false (a masked LM)"
        return None

    def validate(self) -> None:
        check_field_types(self, "model")
        for name in ("block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise GptkitError(f"`model.{name}` must be positive, got {getattr(self, name)}")
        if self.vocab_size < 0:
            raise GptkitError(f"`model.vocab_size` must be >= 0, got {self.vocab_size}")
        if self.n_embd % self.n_head:
            raise GptkitError(
                f"`model.n_embd`={self.n_embd} is not divisible by `model.n_head`={self.n_head}; change one of them"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise GptkitError(f"`model.dropout` must be in [0, 1), got {self.dropout}")
        if not (self.attn_dropout == -1.0 or 0.0 <= self.attn_dropout < 1.0):
            raise GptkitError(f"`model.attn_dropout` must be in [0, 1) or -1 (= dropout), got {self.attn_dropout}")
        for name, choices in (
            ("arch", ARCH_CHOICES),
            ("pos", POS_CHOICES),
            ("norm", NORM_CHOICES),
            ("mlp", MLP_CHOICES),
        ):
            if getattr(self, name) not in choices:
                raise GptkitError(f"`model.{name}`={getattr(self, name)!r} is not one of {', '.join(choices)}")
        kv = self.n_kv_head or self.n_head
        if kv < 0 or self.n_head % kv:
            raise GptkitError(f"`model.n_head`={self.n_head} must be a multiple of `model.n_kv_head`={kv}")
        if self.pos == "rope" and (self.n_embd // self.n_head) % 2:
            raise GptkitError(f"`model.pos`=rope needs an even head size; n_embd/n_head = {self.n_embd // self.n_head}")
        if self.rope_theta <= 0 or self.norm_eps <= 0 or self.mlp_hidden < 0:
            raise GptkitError("`model.rope_theta` and `model.norm_eps` must be > 0 and `model.mlp_hidden` >= 0")
        if self.logit_softcap < 0:
            raise GptkitError(f"`model.logit_softcap` must be >= 0 (0 = off), got {self.logit_softcap}")


@dataclass
class TrainConfig:
    """The training loop. Defaults are nanoGPT's Shakespeare-char recipe at CPU size (`cpu-baby`)."""

    batch_size: int = _doc(12, "sequences per micro-batch")
    grad_accum: int = _doc(1, "micro-batches per optimizer step (tokens/step = grad_accum*batch_size*block_size)")
    max_iters: int = _doc(2000, "optimizer steps in total")
    lr: float = _doc(1e-3, "peak learning rate (after warmup)")
    min_lr: float = _doc(-1.0, "learning rate at the end of the cosine decay; -1 = lr / 10 (nanoGPT's ratio)")
    warmup_iters: int = _doc(100, "steps of linear warmup from 0 to lr")
    lr_decay_iters: int = _doc(0, "step at which the cosine decay reaches min_lr; 0 = max_iters")
    weight_decay: float = _doc(0.1, "AdamW weight decay, applied to >=2-D weights only")
    beta1: float = _doc(0.9, "AdamW beta1")
    beta2: float = _doc(0.99, "AdamW beta2 (0.99 suits small token batches)")
    grad_clip: float = _doc(1.0, "clip the global gradient norm to this; 0 = off")
    eval_interval: int = _doc(250, "evaluate and checkpoint every this many steps (and at the end)")
    eval_iters: int = _doc(50, "batches per split when estimating train/val loss")
    log_interval: int = _doc(10, "print a log line and append to metrics.jsonl every this many steps")
    seed: int = _doc(1337, "seed for initialisation, batches and dropout")
    device: str = _doc("auto", "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    dtype: str = _doc(
        "auto",
        "auto (bfloat16 on GPUs that have it, and on CPUs where a start-up probe finds it faster; else float32), "
        "float32, bfloat16, float16",
    )
    compile: bool = _doc(False, "torch.compile the model (compile time is paid once at start)")
    recompute: bool = _doc(
        False,
        "activation checkpointing: keep each block's input only and recompute the rest in the backward "
        "pass (less memory, about a third more compute)",
    )
    peak_flops: float = _doc(0.0, "peak FLOP/s for MFU; 0 = measure with a short matmul probe at start")
    optimizer: str = _doc("adamw", "adamw, or muon (Muon for the blocks' matrices, AdamW for embeddings, head, gains)")
    muon_lr: float = _doc(0.0, "muon: peak learning rate of the Muon matrices (RMS-matched to AdamW's); 0 = `lr`")
    muon_momentum: float = _doc(0.95, "muon: Nesterov momentum of the Muon matrices")
    muon_ns_steps: int = _doc(5, "muon: Newton-Schulz iterations a step; fewer are cheaper and orthogonalise less")
    schedule: str = _doc("cosine", "LR after warmup: cosine (decay all along) or wsd (stable, then linear cooldown)")
    cooldown_frac: float = _doc(0.2, "wsd: the final share of the run over which the LR falls to min_lr")
    cooldown_shape: str = _doc(
        "linear", "wsd: how the LR falls in the cooldown: linear, or sqrt (1 - sqrt of the cooldown's progress)"
    )
    time_budget_s: float = _doc(0.0, "stop after this many wall-clock seconds of training (0 = off; max_iters caps it)")
    objective: str = _doc(
        "causal",
        "what the model learns: causal (the next token), mlm (masked tokens, settings in [mlm]) or sft (chat "
        "fine-tuning: the next token of assistant replies only, on data from `prepare --chat`)",
    )

    @property
    def final_lr(self) -> float:
        """`min_lr`, or lr / 10 when it is left at -1 (so lowering lr for fine-tuning lowers it too)."""
        return self.lr / 10 if self.min_lr == -1.0 else self.min_lr

    def validate(self) -> None:
        check_field_types(self, "train")
        for name in ("batch_size", "grad_accum", "eval_interval", "eval_iters", "log_interval"):
            if getattr(self, name) <= 0:
                raise GptkitError(f"`train.{name}` must be positive, got {getattr(self, name)}")
        for name in ("max_iters", "warmup_iters", "lr_decay_iters"):
            if getattr(self, name) < 0:
                raise GptkitError(f"`train.{name}` must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0 or self.final_lr < 0 or self.final_lr > self.lr:
            raise GptkitError(
                f"need 0 <= `train.min_lr` <= `train.lr` and lr > 0, got lr={self.lr} min_lr={self.min_lr}; "
                "or leave min_lr at -1 for lr / 10"
            )
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise GptkitError(f"`train.dtype`={self.dtype!r} is not one of auto, float32, bfloat16, float16")
        if self.muon_ns_steps < 1:
            raise GptkitError(f"`train.muon_ns_steps` must be >= 1, got {self.muon_ns_steps}")
        if self.optimizer not in ("adamw", "muon"):
            raise GptkitError(f"`train.optimizer`={self.optimizer!r} is not one of adamw, muon")
        if self.muon_lr < 0 or not 0 <= self.muon_momentum < 1:
            raise GptkitError(
                "need `train.muon_lr` >= 0 and 0 <= `train.muon_momentum` < 1, got "
                f"{self.muon_lr}, {self.muon_momentum}"
            )
        if self.schedule not in ("cosine", "wsd"):
            raise GptkitError(f"`train.schedule`={self.schedule!r} is not one of cosine, wsd")
        if self.cooldown_shape not in ("linear", "sqrt"):
            raise GptkitError(f"`train.cooldown_shape`={self.cooldown_shape!r} is not one of linear, sqrt")
        if not 0 < self.cooldown_frac <= 1 or self.time_budget_s < 0:
            raise GptkitError(
                f"need 0 < `train.cooldown_frac` <= 1 and `train.time_budget_s` >= 0, got {self.cooldown_frac}, "
                f"{self.time_budget_s}"
            )
        if self.objective not in OBJECTIVE_NAMES:
            raise GptkitError(f"`train.objective`={self.objective!r} is not one of {', '.join(OBJECTIVE_NAMES)}")


@dataclass
class MaskedLMConfig:
    """Masked language modelling (`train.objective = "mlm"`): which tokens are hidden, and how (BERT's recipe)."""

    prob: float = _doc(0.15, "share of tokens (or words) selected for prediction (BERT: 0.15)")
    mask: float = _doc(0.8, "share of selected tokens replaced by <|mask|> (BERT: 0.8)")
    random: float = _doc(0.1, "share of selected tokens replaced by a random token; the rest stay (BERT: 0.1)")
    passages: str = _doc("paragraph", "cut the text into passages at blank lines (paragraph) or at every line")
    whole_word: bool = _doc(False, "select whole words (every piece of a word together), not single tokens")

    def validate(self) -> None:
        check_field_types(self, "mlm")
        if self.passages not in ("paragraph", "line"):
            raise GptkitError(f"`mlm.passages`={self.passages!r} is not one of paragraph, line")
        if not 0 < self.prob <= 1 or min(self.mask, self.random) < 0 or self.mask + self.random > 1:
            raise GptkitError(
                "need 0 < `mlm.prob` <= 1 and `mlm.mask`, `mlm.random` >= 0 with a sum <= 1, got "
                f"{self.prob}, {self.mask}, {self.random}"
            )


LORA_TARGETS = ("q", "k", "v", "qkv", "proj", "fc", "gate", "mlp_proj", "mlp", "head")


@dataclass
class LoRAConfig:
    """Low-rank adapters (Hu et al. 2021, LoRA): the model from `--init-from` stays frozen and each targeted
    matrix W learns an update (alpha / r) * B A, B zeros at the start. PEFT's defaults: r 8, alpha 8, dropout 0,
    targets by architecture (GPT-2: c_attn); litgpt's: r 8, alpha 16, dropout 0.05, query and value."""

    r: int = _doc(0, "rank of the adapters; 0 = off (full fine-tuning). 8 is the common choice")
    alpha: float = _doc(16.0, "scale numerator: updates are scaled by alpha / r (litgpt's 16: x2 at r 8)")
    dropout: float = _doc(0.0, "dropout on the adapters' input only (0: small CPU runs are short, not noisy)")
    targets: str = _doc(
        "qkv,proj",
        "matrices that get adapters, comma-separated: q, k, v (parts of the fused attention matrix), qkv (all "
        "of it), proj (attention output), fc, gate, mlp_proj (the MLP's), mlp (all three), head (the LM head)",
    )

    def target_list(self) -> list[str]:
        """`targets` as a list, `mlp` spelled out (gate is skipped later where the MLP has none)."""
        names = [name.strip() for name in self.targets.split(",") if name.strip()]
        expanded = []
        for name in names:
            for part in ("fc", "gate", "mlp_proj") if name == "mlp" else (name,):
                if part not in expanded:
                    expanded.append(part)
        return expanded

    def validate(self) -> None:
        check_field_types(self, "lora")
        if self.r < 0:
            raise GptkitError(f"`lora.r` must be >= 0 (0 = off), got {self.r}")
        if self.alpha <= 0 or not 0.0 <= self.dropout < 1.0:
            raise GptkitError(f"need `lora.alpha` > 0 and 0 <= `lora.dropout` < 1, got {self.alpha}, {self.dropout}")
        names = self.target_list()
        unknown = [name for name in names if name not in LORA_TARGETS]
        if unknown:
            raise GptkitError(f"`lora.targets`: unknown target {unknown[0]!r}; choose from {', '.join(LORA_TARGETS)}")
        if self.r and not names:
            raise GptkitError(f"`lora.targets` is empty; choose from {', '.join(LORA_TARGETS)}")
        if "qkv" in names and {"q", "k", "v"} & set(names):
            raise GptkitError("`lora.targets`: qkv already covers q, k and v; give either qkv or some of q, k, v")


@dataclass
class LogConfig:
    """Where training metrics go besides `metrics.jsonl` (always written)."""

    tensorboard: bool = _doc(False, "also write TensorBoard event files to RUN/tensorboard (needs `tensorboard`)")


@dataclass
class DataSource:
    """One prepared dataset (a directory written by `gptkit prepare`)."""

    path: str = _doc("", "directory written by `gptkit prepare` (token shards, meta.json, tokenizer.json)")
    weight: float = _doc(1.0, "sampling weight when several datasets are mixed")
    name: str = _doc("", "label in logs and metrics (val_loss.NAME); default: the folder's name")

    @property
    def label(self) -> str:
        return self.name or Path(self.path).name


@dataclass
class StageConfig:
    """One stage of sequential training: `steps` optimizer steps on its own data (mixture)."""

    steps: int = _doc(0, "optimizer steps in this stage")
    data: list[DataSource] = field(default_factory=list)


@dataclass
class RunConfig:
    """Everything that defines a training run; saved as `config.json` in the run directory."""

    model: GPTConfig = field(default_factory=GPTConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    mlm: MaskedLMConfig = field(default_factory=MaskedLMConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    data: list[DataSource] = field(default_factory=list)
    stages: list[StageConfig] = field(default_factory=list)
    preset: str = ""

    def validate(self) -> None:
        self.model.validate()
        self.train.validate()
        self.mlm.validate()
        self.lora.validate()
        if self.model.arch == "bigram" and (
            self.lora.r or self.train.objective != "causal" or self.train.optimizer != "adamw"
        ):
            what = "`lora.r` > 0" if self.lora.r else f"`train.objective`={self.train.objective}"
            what = f"`train.optimizer`={self.train.optimizer}" if self.train.optimizer != "adamw" else what
            raise GptkitError(
                f"`model.arch`=bigram is a causal LM of one token of context: it trains with objective causal and "
                f"no LoRA ({what} asks otherwise)"
            )
        if self.lora.r and self.train.optimizer == "muon":
            raise GptkitError(
                "`train.optimizer`=muon is for full weight matrices, not LoRA's low-rank factors; use adamw with "
                "`lora.r` > 0 (the sft preset does)"
            )
        if self.stages and self.data:
            raise GptkitError(
                "config: give either [[data]] (one mixture for the whole run) or [[stages]] (each with its own "
                "data), not both; with a stages file, leave out `data` (--data)"
            )
        for number, stage in enumerate(self.stages, 1):
            if stage.steps <= 0 or not stage.data:
                raise GptkitError(f"[[stages]] #{number}: needs `steps` > 0 and at least one `data` entry")
        if self.stages and sum(s.steps for s in self.stages) != self.train.max_iters:
            raise GptkitError(
                f"[[stages]]: the stages' steps add up to {sum(s.steps for s in self.stages)}, but "
                f"`train.max_iters`={self.train.max_iters}; make them equal"
            )

    def all_data(self) -> list[DataSource]:
        """Every dataset the run uses, in order of first use, each once (by path)."""
        seen, result = set(), []
        for source in [*self.data, *(d for stage in self.stages for d in stage.data)]:
            if source.path not in seen:
                seen.add(source.path)
                result.append(source)
        return result

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: dict, *, source: "Source" = "config") -> "RunConfig":
        raw = dict(raw)
        if not raw.get("stages"):
            raw.pop("stages", None)
        config = cls()
        apply_dict(config, raw, source=source)
        return config


_SECTIONS = {"model": GPTConfig, "train": TrainConfig, "log": LogConfig, "mlm": MaskedLMConfig, "lora": LoRAConfig}
# Settings that moved, as (section, old key) -> (section, key): old run directories and old --set lines still work.
MOVED_KEYS = {("train", f"mlm_{name}"): ("mlm", name) for name in ("prob", "mask", "random", "passages", "whole_word")}


def valid_keys() -> list[str]:
    """Every `section.key` that `--set` accepts."""
    return [f"{section}.{f.name}" for section, cls in _SECTIONS.items() for f in dataclasses.fields(cls)]


# Where settings come from, for their errors: a description ("preset gpt2", a file's path), or for an argument
# of `resolve_config` a function that makes that argument's `ArgumentError` of a problem.
Source = str | Callable[[str], GptkitError]


def _error(source: Source, problem: str) -> GptkitError:
    return source(problem) if callable(source) else GptkitError(f"{source}: {problem}")


def apply_dict(config: RunConfig, raw: dict, *, source: Source) -> None:
    """Apply a nested dict (from TOML or config.json) onto `config`, checking every key and type."""
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise _error(source, f"`{key}` must be a table of settings, got {value!r}")
            for name, item in value.items():
                section, name = MOVED_KEYS.get((key, name), (key, name))
                _set_field(getattr(config, section), section, name, item, source=source)
        elif key == "data":
            config.data = _parse_data(value, source=source)
        elif key == "stages":
            config.stages = _parse_stages(value, source=source)
        elif key == "preset":
            config.preset = str(value)
        else:
            raise _error(
                source, f"unknown section `{key}`; valid sections: {', '.join(_SECTIONS)}, data, stages, preset"
            )


def _parse_data(value, *, source: Source) -> list[DataSource]:
    entries = [value] if isinstance(value, dict) else value
    if not isinstance(entries, list):
        raise _error(source, f"`data` must be a list of tables ([[data]] path = ...), got {value!r}")
    parsed = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"path": entry}
        unknown = set(entry) - {"path", "weight", "name"} if isinstance(entry, dict) else {"?"}
        if unknown or "path" not in entry:
            raise _error(source, f"each [[data]] entry needs `path` (optional `weight`, `name`), got {entry!r}")
        try:
            if isinstance(entry.get("weight"), bool):
                raise ValueError
            weight = float(entry.get("weight", 1.0))
            if not math.isfinite(weight):
                raise ValueError
        except (TypeError, ValueError):
            raise _error(source, f"[[data]] weight {entry.get('weight')!r} is not a finite number") from None
        parsed.append(DataSource(path=str(entry["path"]), weight=weight, name=str(entry.get("name", ""))))
    return parsed


def _parse_stages(value, *, source: Source) -> list[StageConfig]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _error(source, "`stages` must be a list of tables ([[stages]] steps = ..., data = [...])")
    stages = []
    for number, entry in enumerate(value, 1):
        if set(entry) - {"steps", "data"} or "data" not in entry:
            raise _error(source, f"[[stages]] #{number} needs `steps` and `data`, got {sorted(entry)}")
        steps = _coerce(entry.get("steps", 0), int, f"stages[{number}].steps", source)
        stages.append(StageConfig(steps=steps, data=_parse_data(entry["data"], source=source)))
    return stages


def _set_field(obj, section: str, name: str, value, *, source: Source) -> None:
    hints = typing.get_type_hints(type(obj))
    if name not in hints:
        raise _error(source, f"unknown key `{section}.{name}`; valid keys: {', '.join(valid_keys())}")
    setattr(obj, name, _coerce(value, hints[name], f"{section}.{name}", source))


def _coerce(value, kind, key: str, source: Source):
    """Convert `value` (a TOML/JSON value or a `--set` string) to the field's type, or say why not."""
    try:
        result = _convert(value, kind)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400 as an int
        raise _error(source, f"`{key}` expects {kind.__name__}, got {value!r}") from None
    if kind is float and not math.isfinite(result):
        raise _error(source, f"`{key}` must be a finite number, got {value!r}")
    return result


def _convert(value, kind):
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else ""
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):  # TOML's `lr = true` is no number
        raise ValueError
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        if isinstance(value, str):
            return int(float(value)) if "e" in value.lower() else int(value)
        return int(value)
    if kind is float:
        return float(value)
    if kind is str:
        return str(value)
    raise TypeError(kind)


def parse_overrides(pairs: list[str]) -> dict:
    """Turn `["model.n_layer=6", "train.lr=3e-4"]` into a nested dict for `apply_dict`."""
    nested: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ArgumentError("overrides", "expected section.key=value, e.g. model.n_layer=6", pair, flag="--set")
        if section not in _SECTIONS:
            problem = f"unknown key `{key}`; valid keys: {', '.join(valid_keys())}"
            raise ArgumentError("overrides", problem, pair, flag="--set")
        section, name = MOVED_KEYS.get((section, name), (section, name))  # so a later old name still wins
        nested.setdefault(section, {})[name] = value
    return nested


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        problem = f"{file_problem(path)}; pass the path of a .toml file"
        raise ArgumentError("toml_path", problem, shown(path), flag="--config")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        problem = f"not valid TOML ({err}); fix the file"
        raise ArgumentError("toml_path", problem, shown(path), flag="--config") from None


def resolve_config(
    *,
    preset: str | None = None,
    toml_path: str | None = None,
    overrides: list[str] = (),
    base: RunConfig | None = None,
    keep_model: bool = False,
) -> RunConfig:
    """Build a RunConfig: base (or defaults) < preset < TOML file < `overrides` (`--set`); then validate.

    `keep_model` applies only a preset's [train] part, keeping `base`'s network shape (for `init_from`).
    `base` is copied, never changed. An error names the argument it is about (`toml_path=...`); the CLI shows
    its flag (`--config ...`).
    """
    config = RunConfig.from_dict(base.to_dict()) if base is not None else RunConfig()
    file_values = read_toml(toml_path) if toml_path else {}
    in_file = partial(ArgumentError, "toml_path", value=shown(toml_path), flag="--config") if toml_path else None
    chosen = preset or file_values.get("preset")
    if chosen:
        if not isinstance(chosen, str) or chosen not in PRESETS:
            choices = f"choose one of {', '.join(PRESETS)}"
            if preset:
                raise ArgumentError("preset", f"unknown preset; {choices}", chosen)
            raise in_file(f"unknown preset {chosen!r}; {choices}")
        values = {k: v for k, v in PRESETS[chosen].items() if not (keep_model and k == "model")}
        apply_dict(config, values, source=f"preset {chosen}")
    if file_values:
        apply_dict(config, file_values, source=in_file)
    if chosen:
        config.preset = chosen
    apply_dict(config, parse_overrides(list(overrides)), source=partial(ArgumentError, "overrides", flag="--set"))
    config.validate()
    return config


def describe_fields() -> str:
    """One line per setting with its default and doc, for `gptkit train --help-config`."""
    lines = []
    for section, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            lines.append(f"{section}.{f.name} = {f.default!r}  # {f.metadata.get('doc', '')}")
    return "\n".join(lines)
