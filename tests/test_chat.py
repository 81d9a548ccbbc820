"""`gptkit chat` driven through a real pseudo-terminal: prompt, streamed answer, /temp, Ctrl-C, /quit."""

import sys

import pexpect
import pytest

from gptkit.cli.chat import apply_command
from gptkit.errors import GptkitError
from gptkit.sampling import SamplingConfig


def test_console_in_a_real_terminal(trained_run):
    child = pexpect.spawn(
        sys.executable,
        ["-m", "gptkit", "chat", str(trained_run), "--seed", "1", "--max-new-tokens", "40"],
        encoding="utf-8",
        timeout=60,
    )
    try:
        child.expect("/help for commands")
        child.expect(">: ")
        child.sendline("ROMEO:")
        child.expect(r"ROMEO:\r\n(.+?)\r\n>: ")  # the echo, then a streamed answer, then a new prompt
        assert len(child.match.group(1).strip()) > 0
        child.sendline("/temp 0.5")
        child.expect("temperature 0.5")
        child.sendline("/max 1000000")
        child.expect("max new tokens 1000000")
        child.sendline("JULIET:")
        child.expect("JULIET:\r\n")
        child.expect(r"\S{3}")  # the answer has started streaming
        child.sendintr()  # Ctrl-C stops this answer, not the console
        child.expect(r"\[stopped\]")
        child.expect(">: ")
        child.sendline("/max 20")
        child.expect(">: ")
        child.sendline("first line \\")  # a line ending in a backslash continues
        child.expect(r"\.\.\. ")
        child.sendline("second line")
        child.expect(r"second line\r\n.+\r\n>: ")  # one message of two lines, answered
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_ctrl_d_leaves(trained_run):
    child = pexpect.spawn(sys.executable, ["-m", "gptkit", "chat", str(trained_run)], encoding="utf-8", timeout=60)
    child.expect(">: ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_commands_change_settings():
    settings = SamplingConfig(top_k=40)
    reply, settings = apply_command("/topk 0", settings)
    assert reply == "top k off" and settings.top_k is None
    reply, settings = apply_command("/stop \\n\\n", settings)
    assert settings.stop == ("\n\n",)
    reply, settings = apply_command("/seed 3", settings)
    assert reply == "seed 3" and settings.seed == 3
    assert "/temp" in apply_command("/help", settings)[0]
    with pytest.raises(GptkitError, match="unknown command"):
        apply_command("/bogus 1", settings)
    with pytest.raises(GptkitError, match="needs a number"):
        apply_command("/temp hot", settings)
    with pytest.raises(GptkitError, match=r"^/topk -1: must be >= 1"):
        apply_command("/topk -1", settings)


def test_a_bad_message_or_setting_does_not_poison_the_session(trained_run):
    import io

    from helpers import typed

    import gptkit
    from gptkit.cli.chat import chat

    run = gptkit.load(trained_run)
    read = typed(["café", "/temp -1", "/max 5", "ROMEO:"])
    out = io.StringIO()
    chat(run, SamplingConfig(seed=0), read=read, out=out)
    text = out.getvalue()
    assert "error: character 'é'" in text  # refused, and not kept: the next message works
    assert "error: /temp -1: must be >= 0" in text  # refused now, not at the next message
    answer = text.split("max new tokens 5\n")[1]
    assert "error" not in answer and len(answer.strip()) >= 1
