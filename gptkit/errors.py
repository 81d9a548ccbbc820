"""The one exception type for problems a user can fix.

Every message is a single line naming the file or argument, what is wrong and what to do. Only the CLI
turns these into exit codes; library callers catch `GptkitError` (a `ValueError`). Internal invariants
use `assert` instead, because they are bugs, not user errors.
"""


class GptkitError(ValueError):
    """A user-facing error whose message is one line: what, where, and how to fix it.

    `reported_by_rank_0` marks an error that every process of a torchrun launch knows of, so only rank 0
    prints it; any other error is printed by the process that hit it."""

    reported_by_rank_0: bool = False
