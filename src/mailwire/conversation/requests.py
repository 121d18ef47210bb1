"""The I/O requests a conversation yields, and what the drivers answer with.

A driver performs each request and sends back its result: ``Open`` and ``StartTls`` give
``TransportDetails``, ``Read`` gives the bytes received (empty at end of stream),
``Poll`` gives the bytes already received (empty when none: it never waits), ``CheckIdle``
gives a bool, the others give None. A failure is thrown into the conversation
as a mailwire exception.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

if TYPE_CHECKING:
    from mailwire.transport.endpoint import Endpoint


@dataclass(frozen=True, slots=True)
class Open:
    """Connect to the server; with ``tls`` the TLS handshake happens at once (implicit TLS)."""

    endpoint: Endpoint
    tls: bool
    timeout: float


@dataclass(frozen=True, slots=True)
class StartTls:
    """Upgrade the open connection to TLS (after STARTTLS, or to detect implicit TLS)."""

    timeout: float


@dataclass(frozen=True, slots=True)
class Write:
    data: bytes
    phase: str
    timeout: float


@dataclass(frozen=True, slots=True)
class Read:
    phase: str
    timeout: float


@dataclass(frozen=True, slots=True)
class Poll:
    """The bytes the server has sent so far, without waiting (empty when none)."""


@dataclass(frozen=True, slots=True)
class Close:
    """Drop the connection without a word (QUIT is a Write)."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait before going on (retry back-off, rate limits)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class CheckIdle:
    """Is the idle connection still open, with nothing received? Answered with a bool."""


Request: TypeAlias = Open | StartTls | Write | Read | Poll | Close | CheckIdle | Sleep
T = TypeVar("T")
Flow: TypeAlias = Generator[Request, Any, T]
