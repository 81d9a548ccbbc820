"""The one exception type for problems a user can fix.

Every message is a single line naming the file or argument, what is wrong and what to do. Only the CLI
turns these into exit codes; library callers catch `GptkitError` (a `ValueError`). Internal invariants
use `assert` instead, because they are bugs, not user errors.
"""

import shlex


class GptkitError(ValueError):
    """A user-facing error whose message is one line: what, where, and how to fix it.

    `reported_by_rank_0` marks an error that every process of a torchrun launch knows of, so only rank 0
    prints it; any other error is printed by the process that hit it."""

    reported_by_rank_0: bool = False


_NO_VALUE = object()


class ArgumentError(GptkitError):
    """A bad value of one named argument.

    The message names the Python argument (`top_k=0: must be >= 1`); the command line shows the same problem
    under its flag (`--top-k 0: must be >= 1`), as `on_command_line` spells it. `flag` is given where the
    flag's name is not the argument's (`toml_path` is `--config`).
    """

    def __init__(self, argument: str, problem: str, value=_NO_VALUE, *, flag: str | None = None):
        self.argument, self.problem, self.value = argument, problem, value
        self.flag = flag or "--" + argument.replace("_", "-")
        plain = value if isinstance(value, str | int | float) else str(value)  # a Path shows as 'runs/x'
        super().__init__(f"{argument}{'' if value is _NO_VALUE else f'={plain!r}'}: {problem}")

    def on_command_line(self) -> str:
        """The message as the CLI shows it: with the flag and the value as typed."""
        if self.value is _NO_VALUE:
            return f"{self.flag}: {self.problem}"
        typed = shlex.quote(str(self.value)) if isinstance(self.value, str) else self.value  # '' for an empty one
        return f"{self.flag} {typed}: {self.problem}"
