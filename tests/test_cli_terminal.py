"""Whatever the command line prints that came from a server is escaped (SECURITY.md, "What
the command line prints"): result lines, error lines and the ``-v`` trace carry no terminal
control sequence and no bare CR."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailwire.cli.terminal import printable
from tests.support.cli import run_cli
from tests.support.scripted import (
    Expect,
    ExpectData,
    Reply,
    ReplyLines,
    ScriptedServerFactory,
    goodbye,
)

TITLE = "\x1b]0;owned\x07"          # sets the terminal's title
ERASE = "\x1b[2K\x1b[1A"            # erases the line, moves up
CSI = "\x9b31m"                      # the one-byte C1 form of ESC [
OVERRIDE = "\u202e"                  # right-to-left override
HOSTILE = f"{TITLE}{ERASE}{CSI}fake{OVERRIDE}txt.exe\rOK"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def greeting_and_ehlo() -> list[object]:
    return [Reply(220, f"evil.test ESMTP {HOSTILE}"), Expect(b"EHLO"),
            ReplyLines(250, [f"evil.test {HOSTILE}", "PIPELINING"])]


def assert_clean(text: str) -> None:
    assert not UNSAFE.search(text), repr(text)
    assert "\r" not in text


def test_printable_escapes_what_acts_on_a_terminal() -> None:
    assert printable(HOSTILE) == ("\\x1b]0;owned\\x07\\x1b[2K\\x1b[1A\\x9b31mfake\\u202etxt.exe"
                                  "\\rOK")
    assert printable("plain text, ünïcode ✓") == "plain text, ünïcode ✓"


def test_result_lines_and_the_trace_are_escaped(
    scripted_server: ScriptedServerFactory, tmp_path: Path
) -> None:
    server = scripted_server(
        *greeting_and_ehlo(),
        Expect(b"MAIL FROM:"), Reply(250, f"sender ok {HOSTILE}"),
        Expect(b"RCPT TO:"), Reply(250, f"rcpt ok {HOSTILE}"),
        Expect(b"RCPT TO:"), Reply(550, f"5.1.1 no such user {HOSTILE}"),
        Expect(b"DATA"), Reply(354, "go"), ExpectData(),
        Reply(250, f"2.0.0 queued {HOSTILE}"), *goodbye())
    result = run_cli("-v", "send", "--host", server.host, "--port", str(server.port),
                     "--security", "none", "--from", "a@example.com", "--to", "b@example.com",
                     "--to", "c@example.com", "--body", "x", cwd=tmp_path)
    assert result.returncode == 5, result.stderr
    assert "refused   c@example.com  550 5.1.1 no such user \\x1b]0;owned\\x07" in result.stdout
    assert "server    250 2.0.0 queued \\x1b]0;owned" in result.stdout
    assert "S: 220 evil.test ESMTP \\x1b]0;owned\\x07\\x1b[2K" in result.stderr
    assert_clean(result.stdout)
    assert_clean(result.stderr)


@pytest.mark.parametrize("code", [421, 554])
def test_error_lines_are_escaped(scripted_server: ScriptedServerFactory, tmp_path: Path,
                                 code: int) -> None:
    server = scripted_server(Reply(code, f"go away {HOSTILE}"), allow_errors=True)
    result = run_cli("send", "--host", server.host, "--port", str(server.port), "--security",
                     "none", "--from", "a@example.com", "--to", "b@example.com", "--body", "x",
                     cwd=tmp_path)
    assert result.returncode == 3
    assert "go away \\x1b]0;owned\\x07" in result.stderr
    assert_clean(result.stderr)


def test_probe_output_is_escaped(scripted_server: ScriptedServerFactory,
                                 tmp_path: Path) -> None:
    server = scripted_server(*greeting_and_ehlo(), *goodbye(), repeat=True, allow_errors=True)
    result = run_cli("probe", f"{server.host}:{server.port}", "--timeout", "2",
                     "--greeting-timeout", "1", cwd=tmp_path)
    assert "evil.test ESMTP \\x1b]0;owned" in result.stdout
    assert_clean(result.stdout)
    assert_clean(result.stderr)


def test_send_many_lines_are_escaped(scripted_server: ScriptedServerFactory,
                                     tmp_path: Path) -> None:
    (tmp_path / "one.eml").write_bytes(b"From: a@example.com\r\nTo: b@example.com\r\n\r\nx\r\n")
    server = scripted_server(
        *greeting_and_ehlo(), Expect(b"MAIL FROM:"), Reply(250, "ok"),
        Expect(b"RCPT TO:"), Reply(550, f"5.1.1 no {HOSTILE}"),
        Expect(b"DATA"), Reply(554, "no valid recipients"), allow_errors=True)
    result = run_cli("send-many", "--host", server.host, "--port", str(server.port),
                     "--security", "none", "--max-attempts", "1", str(tmp_path / "one.eml"),
                     cwd=tmp_path)
    assert result.returncode == 5, result.stderr
    assert "5.1.1 no \\x1b]0;owned\\x07" in result.stdout
    assert_clean(result.stdout)
    assert_clean(result.stderr)
