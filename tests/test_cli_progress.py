"""``mailwire.cli.progress``: a spinner or a bar on a terminal, nothing when piped."""

from __future__ import annotations

import io
import time

import pytest

from mailwire.cli.progress import NullProgress, TerminalProgress, progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_when_not_a_terminal() -> None:
    piped = io.StringIO()
    with progress("sending", piped) as reporter:
        reporter(1, 10)
        time.sleep(0.15)
    assert isinstance(reporter, NullProgress)
    assert piped.getvalue() == ""


def test_spinner_then_bar_then_erased() -> None:
    terminal = FakeTerminal()
    reporter = progress("sending", terminal)
    assert isinstance(reporter, TerminalProgress)
    assert reporter.render().endswith(" sending")
    reporter(3, None)
    assert reporter.render().endswith("sending (3)")
    reporter(5, 10)
    assert reporter.render() == "sending [############------------] 5/10"
    reporter(10, 10)
    assert reporter.render() == "sending [########################] 10/10"


def test_drawn_by_a_thread_and_erased_at_the_end() -> None:
    terminal = FakeTerminal()
    with TerminalProgress("connecting", terminal, interval=0.01) as reporter:
        time.sleep(0.1)
        reporter.set_label("sending")
        reporter(1, 2)
        time.sleep(0.1)
    drawn = terminal.getvalue()
    assert "\r| connecting" in drawn or "\r/ connecting" in drawn
    assert "sending [" in drawn
    last = drawn.rsplit("\r", 2)
    assert last[-1] == "" and last[-2].strip() == ""


def test_disabled_or_dumb_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(progress("x", FakeTerminal(), enabled=False), NullProgress)
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(progress("x", FakeTerminal()), NullProgress)
