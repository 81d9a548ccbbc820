"""Training objectives, chosen by `train.objective`: `causal` (next token, GPT), `mlm` (masked tokens, BERT) and
`sft` (chat fine-tuning: next token, learned on the assistant's replies only).

Everything that differs between objectives lives in their modules; the rest of gptkit asks
`objective_for(config)` and never tests an objective's name. To add one (say a preference objective on
chosen/rejected replies): write `gptkit/objectives/NAME.py` with a subclass of `Objective` (or of one that is
close: `sft` extends `causal`) that overrides what differs (usually `check`, `batch_plan` or
`batch_source`, and `loss`; `training_tokenizer` if it needs special tokens; `learned_tokens` if tokens/s
should count less than every token; `evaluate`, `check_generates`, `fill` and `next_step` for what a trained
run does), put its settings in their own dataclass section of `gptkit.config` (as `[mlm]` is, listed in
`config._SECTIONS`), add its name to `config.OBJECTIVE_NAMES` and the class to `OBJECTIVES` below. Where the
trainer must ask something new, add a hook with a default to `Objective`, never a branch on a name.
"""

from gptkit.config import OBJECTIVE_NAMES, RunConfig
from gptkit.objectives.base import Objective
from gptkit.objectives.causal import CausalLM
from gptkit.objectives.masked import MaskedLM
from gptkit.objectives.sft import ChatSFT

OBJECTIVES: dict[str, type[Objective]] = {"causal": CausalLM, "mlm": MaskedLM, "sft": ChatSFT}
assert set(OBJECTIVES) == set(OBJECTIVE_NAMES), "every name in config.OBJECTIVE_NAMES needs a class here"

__all__ = ["OBJECTIVES", "Objective", "objective_for"]


def objective_for(config: RunConfig) -> Objective:
    """The objective `config` trains with (`train.objective`)."""
    return OBJECTIVES[config.train.objective](config)
