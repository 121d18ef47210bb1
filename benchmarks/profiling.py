"""cProfile for code that runs on several threads (``send_many`` with ``connections > 1``).

cProfile only sees the thread that enabled it, so while a ``ThreadProfiler`` is active every
new ``threading.Thread`` runs under a profiler of its own; ``dump`` merges them all.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ThreadProfiler:
    """Profiles the calling thread and every thread started inside ``with``."""

    def __init__(self) -> None:
        self._main = cProfile.Profile()
        self._threads: list[cProfile.Profile] = []
        self._original_run: Callable[[threading.Thread], None] | None = None

    def __enter__(self) -> ThreadProfiler:
        original = self._original_run = threading.Thread.run
        profiles = self._threads

        def profiled_run(thread: threading.Thread) -> None:
            profile = cProfile.Profile()
            profiles.append(profile)
            profile.enable()
            try:
                original(thread)
            finally:
                profile.disable()

        threading.Thread.run = profiled_run  # type: ignore[method-assign, assignment]
        self._main.enable()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._main.disable()
        if self._original_run is not None:
            threading.Thread.run = self._original_run  # type: ignore[method-assign, assignment]

    def dump(self, path: Path) -> None:
        stats = pstats.Stats(self._main)
        for profile in self._threads:
            stats.add(profile)
        stats.dump_stats(str(path))


def top_functions(path: Path, limit: int = 15, sort: str = "tottime") -> str:
    """The ``limit`` functions with the most ``sort`` time in the stats file at ``path``."""
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return out.getvalue()
