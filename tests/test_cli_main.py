"""The program as a whole: help and its exit-status table, usage errors, the error mapping."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from mailwire import (
    AuthenticationError,
    ConfigError,
    ConnectionLostError,
    DataRefusedError,
    MessageError,
    ProxyAuthenticationError,
    RecipientsRefusedError,
    SenderRefusedError,
    SmtpError,
    SmtpProtocolError,
    SmtpSecurityError,
    SmtpTimeoutError,
    SmtpUsageError,
)
from mailwire.cli.exit_codes import ExitCode, exit_code_for
from mailwire.protocol.replies import Reply
from tests.support.cli import assert_one_error_line, run_cli

REFUSAL = Reply(550, ("5.1.1 no",))


def test_help_documents_commands_and_exit_statuses(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("send", "probe", "serve", "demo"):
        assert command in result.stdout
    for line in ("0    success", "2    usage or configuration error", "3    connection error",
                 "4    authentication failed", "5    the server refused"):
        assert line in result.stdout
    send_help = run_cli("send", "--help", cwd=tmp_path).stdout
    assert "--insecure-skip-verify" in send_help and "--password-env" in send_help
    assert "exit status:" in send_help


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "required: COMMAND" in assert_one_error_line(result)


def test_verbose_flag_is_accepted_after_the_command(tmp_path: Path) -> None:
    result = run_cli("probe", "-v", "--json", "127.0.0.1:1", cwd=tmp_path)
    assert result.returncode == 3


@pytest.mark.parametrize(("error", "code"), [
    (ConfigError("x"), ExitCode.USAGE),
    (SmtpUsageError("x"), ExitCode.USAGE),
    (MessageError("x"), ExitCode.USAGE),
    (ConnectionLostError("x"), ExitCode.CONNECTION),
    (ProxyAuthenticationError("x"), ExitCode.CONNECTION),
    (SmtpTimeoutError("greeting", 1), ExitCode.CONNECTION),
    (SmtpSecurityError("x"), ExitCode.CONNECTION),
    (SmtpProtocolError("x"), ExitCode.CONNECTION),
    (AuthenticationError("x", reply=Reply(535, ("no",))), ExitCode.AUTHENTICATION),
    (SenderRefusedError("a@b", REFUSAL), ExitCode.REFUSED),
    (RecipientsRefusedError({"a@b": REFUSAL}), ExitCode.REFUSED),
    (DataRefusedError("x", reply=REFUSAL), ExitCode.REFUSED),
    (SmtpError("x"), ExitCode.FAILURE),
])
def test_exit_code_for_each_error(error: SmtpError, code: ExitCode) -> None:
    assert exit_code_for(error) is code


def test_probe_help_lists_only_the_exit_statuses_probe_uses(tmp_path: Path) -> None:
    probe_help = run_cli("probe", "--help", cwd=tmp_path).stdout
    statuses = re.findall(r"^  (\d+) ", probe_help.split("exit status:", 1)[1], re.MULTILINE)
    assert statuses == ["0", "1", "2", "3", "130"]
    assert "authentication failed" not in probe_help


def test_verbose_says_what_it_waits_for(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never greets
        port = silent.getsockname()[1]
        result = run_cli("-v", "send", "--host", "127.0.0.1", "--port", str(port),
                         "--security", "none", "--greeting-timeout", "0.5", "--timeout", "0.5",
                         "--from", "a@example.com", "--to", "b@example.com", "--body", "x",
                         cwd=tmp_path)
    assert result.returncode == 3
    lines = result.stderr.splitlines()
    assert lines[0].startswith("configuration: no file (searched: $MAILWIRE_CONFIG, ")
    assert lines[1] == (f"connecting to 127.0.0.1:{port} (up to 0.5 s each for connecting and "
                        "for TLS), then waiting up to 0.5 s for its greeting ...")
    assert lines[-1].startswith("mailwire: error: ")
