"""`python -m gptkit ...` is the same as the `gptkit` command (and what `torchrun -m gptkit` runs)."""

from gptkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
