"""Progress on a terminal: a spinner while the total is unknown, a bar once it is known.

``progress(label)`` returns a reporter: a ``TerminalProgress`` when standard error is a terminal,
else a ``NullProgress`` that prints nothing, so piped output stays clean. Both are context
managers and both are ``ProgressCallback``s: call ``reporter(done, total)`` (``total`` None when
unknown) from any thread, as the bulk sender will for each message.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

ProgressCallback = Callable[[int, "int | None"], None]

FRAMES = "|/-\\"
BAR_WIDTH = 24
INTERVAL = 0.1


class NullProgress:
    """Reports nothing (output is not a terminal, or progress is off)."""

    def __call__(self, done: int, total: int | None) -> None:
        return None

    def set_label(self, label: str) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        return None


class TerminalProgress:
    """One line, redrawn every ``interval`` seconds by a background thread, erased at the end."""

    def __init__(self, label: str, stream: TextIO, interval: float = INTERVAL) -> None:
        self._label = label
        self._stream = stream
        self._interval = interval
        self._done = 0
        self._total: int | None = None
        self._frame = 0
        self._width = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailwire-progress", daemon=True)

    def start(self) -> TerminalProgress:
        self._thread.start()
        return self

    def __call__(self, done: int, total: int | None) -> None:
        with self._lock:
            self._done, self._total = done, total

    def set_label(self, label: str) -> None:
        with self._lock:
            self._label = label

    def render(self) -> str:
        """The current line (without the carriage return)."""
        with self._lock:
            label, done, total = self._label, self._done, self._total
        if total:
            filled = min(BAR_WIDTH, BAR_WIDTH * done // total)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            return f"{label} [{bar}] {done}/{total}"
        frame = FRAMES[self._frame % len(FRAMES)]
        return f"{frame} {label}" + (f" ({done})" if done else "")

    def close(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()
        self._write("\r" + " " * self._width + "\r")

    def __enter__(self) -> TerminalProgress:
        return self.start() if not self._thread.is_alive() else self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            line = self.render()
            self._frame += 1
            padding = " " * max(0, self._width - len(line))
            self._width = max(self._width, len(line))
            self._write(f"\r{line}{padding}")

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            self._stopped.set()


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def progress(label: str, stream: TextIO | None = None,
             *, enabled: bool = True) -> TerminalProgress | NullProgress:
    """A reporter for ``label``: drawn on ``stream`` (standard error) only if it is a terminal."""
    target = stream if stream is not None else sys.stderr
    if enabled and is_terminal(target):
        return TerminalProgress(label, target)
    return NullProgress()
