"""Several optimizers over disjoint parameters, stepped, zeroed, saved and restored as one.

Muon only takes matrices, so a Muon run pairs it with AdamW for the rest. The set looks like one optimizer
to the training loop, the gradient scaler and the checkpoint: `param_groups` is every part's groups in
order, and the state dict numbers parameters across the parts as a single optimizer would.
"""

import torch


class OptimizerSet:
    def __init__(self, parts: list[tuple[torch.optim.Optimizer, float]]):
        self.parts = parts  # (optimizer, lr scale relative to the schedule's lr)

    @property
    def param_groups(self) -> list[dict]:
        return [group for part, _ in self.parts for group in part.param_groups]

    def step(self, closure=None) -> None:
        assert closure is None, "OptimizerSet does not take a closure"
        for part, _ in self.parts:
            part.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part, _ in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        state, groups, offset = {}, [], 0
        for part, _ in self.parts:
            saved = part.state_dict()
            state.update({offset + index: slots for index, slots in saved["state"].items()})
            groups += [group | {"params": [offset + i for i in group["params"]]} for group in saved["param_groups"]]
            offset += sum(len(group["params"]) for group in saved["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, saved: dict) -> None:
        groups = saved["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{len(groups)} saved parameter groups for {len(self.param_groups)} in this optimizer")
        offset = 0
        for part, _ in self.parts:
            mine, groups = groups[: len(part.param_groups)], groups[len(part.param_groups) :]
            size = sum(len(group["params"]) for group in mine)
            part.load_state_dict(
                {
                    "state": {i - offset: s for i, s in saved["state"].items() if offset <= i < offset + size},
                    "param_groups": [g | {"params": [i - offset for i in g["params"]]} for g in mine],
                }
            )
            offset += size
