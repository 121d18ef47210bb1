"""``mailwire demo``: the README's main job, with no network and no arguments."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.cli import run_cli


def test_demo_sends_through_starttls_and_auth_and_exits_0(tmp_path: Path) -> None:
    began = time.monotonic()
    result = run_cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 15
    out = result.stdout
    assert "mode      SSL_EXPLICIT (chosen by AUTO); TLSv1." in out
    assert "AUTH SCRAM-SHA-512-PLUS" in out
    assert "accepted alice@example.com, bob@example.com; server said 250 OK" in out
    assert "envelope  MAIL FROM:<demo@example.com>  RCPT TO:<alice@example.com>, " \
           "<bob@example.com>" in out
    assert "AUTH SCRAM-SHA-512-PLUS as 'demo'" in out
    assert "Subject:      Hello from mailwire" in out
    assert result.stderr == ""
    assert list(tmp_path.iterdir()) == [], "the demo leaves nothing behind"


def test_demo_verbose_shows_the_redacted_conversation(tmp_path: Path) -> None:
    result = run_cli("-v", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "C: STARTTLS" in result.stderr
    assert "C: AUTH SCRAM-SHA-512-PLUS <redacted>" in result.stderr
    assert "C: <message data> ." in result.stderr
