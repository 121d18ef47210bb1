"""``Ledger``: the bookkeeping of a connection pool, with no I/O, no lock and no clock of its own.

It counts the clients that exist (idle, borrowed, or being created), keeps the idle ones with
the time they were returned, and decides which have been idle too long. The sync and asyncio
pools wrap it with their own lock, waiting and closing; it never calls a client.

Idle clients are handed out most recently returned first, so a busy pool keeps reusing warm
connections and the ones at the other end of the line are the ones that expire.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class _Idle(Generic[C]):
    client: C
    since: float


class Ledger(Generic[C]):
    """Up to ``max_connections`` clients; idle ones expire after ``idle_timeout`` seconds."""

    def __init__(self, max_connections: int, idle_timeout: float) -> None:
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._idle: deque[_Idle[C]] = deque()
        self.total = 0
        self.closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def in_use(self) -> int:
        """Clients borrowed or being created."""
        return self.total - len(self._idle)

    def take(self) -> C | None:
        """The most recently returned idle client, if any."""
        return self._idle.pop().client if self._idle else None

    def reserve(self) -> bool:
        """Count a client about to be created, if the limit allows one more."""
        if self.closed or self.total >= self.max_connections:
            return False
        self.total += 1
        return True

    def give_back(self, client: C, now: float) -> None:
        self._idle.append(_Idle(client, now))

    def discard(self) -> None:
        """A client left the pool (its creation failed, or it was thrown away)."""
        self.total -= 1

    def expire(self, now: float) -> list[C]:
        """Remove and return the clients idle for longer than ``idle_timeout``."""
        expired: list[C] = []
        while self._idle and now - self._idle[0].since >= self.idle_timeout:
            expired.append(self._idle.popleft().client)
            self.total -= 1
        return expired

    def next_expiry(self) -> float | None:
        """When the longest-idle client expires, or None when nothing is idle."""
        return self._idle[0].since + self.idle_timeout if self._idle else None

    def close(self) -> list[C]:
        """Refuse new clients from now on; remove and return the idle ones."""
        self.closed = True
        drained = [entry.client for entry in self._idle]
        self._idle.clear()
        self.total -= len(drained)
        return drained
