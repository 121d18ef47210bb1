"""Fork safety: a pool used in a child process never touches its parent's connections.

After ``os.fork()`` the child has copies of the parent's sockets; writing to one would mix its
bytes into the parent's SMTP conversation, and a lock held by another parent thread would stay
held forever. Every pool registers here; in the child, right after the fork, each one forgets
the parent's clients without calling them (their sockets are only closed when garbage
collected, which sends nothing while the parent still holds them) and starts afresh with a new
lock. Pools also compare ``os.getpid()`` on every use, for forks that skip the at-fork hooks.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol


class ForkAware(Protocol):
    def _forget_parent(self) -> None: ...


_pools: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_registered = False
_registering = threading.Lock()


def watch(pool: ForkAware) -> None:
    """Call ``pool._forget_parent()`` in every child process forked from now on."""
    global _registered
    with _registering:
        if not _registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _registered = True
    _pools.add(pool)


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        pool._forget_parent()
