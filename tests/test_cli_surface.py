"""No command, flag, positional argument or choice a user has may disappear from the command line.

`fixtures/cli_surface.json` is the surface as it was (every subcommand's flags with their choices, and its
positional arguments); a command line may only add to it. After adding commands or flags on purpose,
regenerate it with `python tests/test_cli_surface.py > tests/fixtures/cli_surface.json`.
"""

import argparse
import json
import sys
from pathlib import Path

from gptkit.cli import build_parser

SNAPSHOT = Path(__file__).parent / "fixtures" / "cli_surface.json"


def surface(parser: argparse.ArgumentParser, command: str = "gptkit") -> dict:
    """{command: {"flags": {flag: choices or None}, "positionals": [names]}} for the parser and its subcommands."""
    flags, positionals, found = {}, [], {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(surface(sub, f"{command} {name}"))
        elif action.option_strings:
            for flag in action.option_strings:
                flags[flag] = sorted(map(str, action.choices)) if action.choices else None
        else:
            positionals.append(action.dest)
    return {command: {"flags": flags, "positionals": positionals}, **found}


def test_every_command_flag_and_choice_of_before_is_still_there():
    before, now = json.loads(SNAPSHOT.read_text()), surface(build_parser())
    missing = []
    for command, old in before.items():
        if command not in now:
            missing.append(command)
            continue
        new = now[command]
        for flag, choices in old["flags"].items():
            if flag not in new["flags"]:
                missing.append(f"{command} {flag}")
            elif choices and not set(choices) <= set(new["flags"][flag] or []):
                missing.append(f"{command} {flag} choices {sorted(set(choices) - set(new['flags'][flag] or []))}")
        if new["positionals"][: len(old["positionals"])] != old["positionals"]:
            missing.append(f"{command} positionals {old['positionals']} -> {new['positionals']}")
    assert not missing


def test_the_snapshot_covers_every_command():
    assert {"gptkit train", "gptkit tokenizer train", "gptkit viz attention", "gptkit serve"} <= set(
        json.loads(SNAPSHOT.read_text())
    )


if __name__ == "__main__":
    json.dump(surface(build_parser()), sys.stdout, indent=1, sort_keys=True)
    print()
