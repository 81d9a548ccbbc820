"""Conversation files in the formats people have, read into one form and checked record by record.

Formats (detected per file from its first record, then required of every record):
- OpenAI messages: `{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}]}`
- ShareGPT: `{"conversations": [{"from": "system"|"human"|"gpt", "value": "..."}]}`
- Alpaca: `{"instruction": "...", "input": "..." (optional), "output": "..."}` -> a user turn (instruction,
  then a blank line and the input when there is one) and the assistant's output.
A file is JSON lines (one record a line) or one JSON array of records. A record is valid when its roles are
known, no text is empty, a system message comes only first, user and assistant alternate from the user, and
an assistant speaks at least once. Problems are `file:line: reason`. Entry point: `read_conversations`.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gptkit.errors import GptkitError
from gptkit.paths import file_problem, shown

ROLES = ("system", "user", "assistant")
IM_START, IM_END = "<|im_start|>", "<|im_end|>"  # the chat template's own tokens (see template.py)
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


@dataclass(frozen=True)
class Message:
    role: str  # system, user or assistant
    content: str


Conversation = tuple[Message, ...]


class InvalidRecord(GptkitError):
    """One record that is not a usable conversation; `--skip-invalid` skips these and counts them."""


def check_conversation(messages: Conversation, *, need_reply: bool = True) -> None:
    """Raise InvalidRecord (without a location) unless `messages` is a valid conversation."""
    if not messages:
        raise InvalidRecord("no messages")
    for number, message in enumerate(messages, 1):
        if message.role not in ROLES:
            raise InvalidRecord(f"message {number}: unknown role {message.role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(message.content, str) or not message.content:
            raise InvalidRecord(f"message {number} ({message.role}): empty content")
        if IM_START in message.content or IM_END in message.content:
            raise InvalidRecord(
                f"message {number} ({message.role}): holds the chat template's own token text "
                f"({IM_START} or {IM_END}), which would end or start a turn; remove it"
            )
    turns = messages[1:] if messages[0].role == "system" else messages
    if any(m.role == "system" for m in turns):
        raise InvalidRecord("a system message may only come first")
    for number, message in enumerate(turns):
        expected = "user" if number % 2 == 0 else "assistant"
        if message.role != expected:
            what = (
                "two user turns in a row" if message.role == "user" else "an assistant turn with no user turn before it"
            )
            raise InvalidRecord(
                f"{what} (message {number + 1 + len(messages) - len(turns)}); user and assistant must alternate"
            )
    if need_reply and not any(m.role == "assistant" for m in turns):
        raise InvalidRecord("no assistant turn: there is nothing to learn from it")


def _messages(record, kind: str) -> Conversation:
    if kind == "openai":
        items = record.get("messages")
        if not isinstance(items, list) or not all(isinstance(m, dict) for m in items):
            raise InvalidRecord("`messages` must be a list of {role, content} objects")
        return tuple(Message(m.get("role"), m.get("content")) for m in items)
    if kind == "sharegpt":
        items = record.get("conversations")
        if not isinstance(items, list) or not all(isinstance(m, dict) for m in items):
            raise InvalidRecord("`conversations` must be a list of {from, value} objects")
        return tuple(Message(SHAREGPT_ROLES.get(m.get("from"), m.get("from")), m.get("value")) for m in items)
    instruction, extra, output = record.get("instruction"), record.get("input") or "", record.get("output")
    if not isinstance(instruction, str) or not isinstance(output, str) or not isinstance(extra, str):
        raise InvalidRecord("alpaca records need `instruction` and `output` strings (and an optional `input`)")
    question = f"{instruction}\n\n{extra}" if extra else instruction
    return (Message("user", question), Message("assistant", output))


def record_format(record) -> str | None:
    """openai, sharegpt or alpaca: which format a record is in (None: none of them)."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    return None


def _records(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed record) for each record of a JSON-lines file or a JSON array."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise GptkitError(f"{shown(path)}:{line}: not UTF-8 (invalid byte at offset {err.start}); convert it") from None
    start = len(text) - len(text.lstrip())
    if text[start : start + 1] == "[":
        yield from _array_records(path, text, start + 1)
        return
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except ValueError as err:
                raise GptkitError(f"{shown(path)}:{number}: not valid JSON ({err})") from None


def _array_records(path: Path, text: str, at: int) -> Iterator[tuple[int, object]]:
    decoder = json.JSONDecoder()
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        line = text.count("\n", 0, at) + 1
        if at >= len(text):
            raise GptkitError(f"{shown(path)}:{line}: the JSON array is not closed with ]")
        if text[at] == "]":
            return
        try:
            record, at = decoder.raw_decode(text, at)
        except ValueError as err:
            raise GptkitError(f"{shown(path)}:{line}: not valid JSON ({err})") from None
        yield line, record


def read_conversations(
    path, *, skip_invalid: bool = False, counts: dict | None = None
) -> Iterator[tuple[int, Conversation]]:
    """(line, conversation) for each conversation of one file. A bad record is an error `file:line: reason`;
    with `skip_invalid` it is skipped and counted in `counts["skipped"]` instead (malformed JSON and a file in
    no known format always fail)."""
    path = Path(path)
    if not path.is_file():
        raise GptkitError(f"{shown(path)}: {file_problem(path)}; pass conversation files (.jsonl or .json)")
    kind = None
    for line, record in _records(path):
        if kind is None:
            kind = record_format(record)
            if kind is None:
                raise GptkitError(
                    f"{shown(path)}:{line}: not a conversation in a known format; records need `messages` (OpenAI), "
                    "`conversations` (ShareGPT) or `instruction` and `output` (Alpaca)"
                )
        try:
            if record_format(record) != kind:
                raise InvalidRecord(f"not a {kind} record like the file's first one")
            messages = _messages(record, kind)
            check_conversation(messages)
        except InvalidRecord as err:
            if not skip_invalid:
                raise GptkitError(f"{shown(path)}:{line}: {err}; fix it or pass --skip-invalid") from None
            if counts is not None:
                counts["skipped"] = counts.get("skipped", 0) + 1
            continue
        yield line, messages
    if kind is None:
        raise GptkitError(f"{shown(path)}: no conversations in it")
