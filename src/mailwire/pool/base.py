"""What ``SmtpPool`` and ``AsyncSmtpPool`` share: how a pool is made (from client options, a
factory, loaded settings or a configuration file), its limits, its first client, and forgetting
a parent process's clients after a fork. Lending and closing differ (threads or tasks) and stay
in ``sync_pool`` and ``async_pool``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Self, TypeVar

from mailwire.config import Settings
from mailwire.errors import SmtpUsageError
from mailwire.options import ClientOptions
from mailwire.pool import factory, forks
from mailwire.pool.ledger import Ledger
from mailwire.security import SecurityOptions

DEFAULT_MAX_CONNECTIONS = 4
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_WAIT_TIMEOUT = 30.0

Client = TypeVar("Client", bound=ClientOptions)


class PoolBase(Generic[Client]):
    """The making of a pool of ``_kind`` clients; see ``SmtpPool`` for the options."""

    _kind: ClassVar[type[Any]]
    _ledger: Ledger[Client]
    _description: str

    def __init__(
        self,
        host: str,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        security: SecurityOptions | str = SecurityOptions.AUTO,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        **client_options: Any,
    ) -> None:
        make = factory.from_options(self._kind, host, port, username, password, security,
                                    client_options)
        self._setup(make, max_connections, idle_timeout, wait_timeout)

    @classmethod
    def from_factory(
        cls,
        make_client: Callable[[], Client],
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    ) -> Self:
        """A pool of the clients ``make_client()`` returns (each must be a new client)."""
        pool = cls.__new__(cls)
        pool._setup(make_client, max_connections, idle_timeout, wait_timeout)
        return pool

    @classmethod
    def from_settings(cls, settings: Settings, **pool_options: Any) -> Self:
        """A pool whose clients are set up from ``settings`` (``mailwire.load_settings``)."""
        return cls.from_factory(factory.from_settings(cls._kind, settings), **pool_options)

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        profile: str | None = None,
        environ: Mapping[str, str] | None = None,
        **pool_options: Any,
    ) -> Self:
        """A pool set up from a configuration file and ``MAILWIRE_*`` variables, as the
        client's ``from_config`` reads them (once, now)."""
        return cls.from_factory(factory.from_config(cls._kind, path, profile, environ),
                                **pool_options)

    def _setup(self, make_client: Callable[[], Client], max_connections: int,
               idle_timeout: float, wait_timeout: float) -> None:
        if max_connections < 1:
            raise SmtpUsageError("max_connections must be at least 1")
        if idle_timeout <= 0 or wait_timeout < 0:
            raise SmtpUsageError("idle_timeout must be positive and wait_timeout not negative")
        self._make_client = make_client
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.wait_timeout = wait_timeout
        first = make_client()
        self._description = describe(first)
        self._start_generation()
        self._ledger.total = 1
        self._ledger.give_back(first, time.monotonic())
        forks.watch(self)

    def _start_generation(self) -> None:
        """A new lock (or condition), ledger and reaper slot, for this process."""
        raise NotImplementedError

    def _forget_parent(self) -> None:
        """In a forked child: drop the parent's clients unused, start with none."""
        closed = self._ledger.closed
        self._start_generation()
        self._ledger.closed = closed

    @property
    def closed(self) -> bool:
        return self._ledger.closed

    def __repr__(self) -> str:
        state = "closed" if self._ledger.closed else (
            f"{self._ledger.in_use} in use, {self._ledger.idle} idle")
        return f"<{type(self).__name__} {self._description} max={self.max_connections} {state}>"


def describe(client: ClientOptions) -> str:
    """Where a pool's clients connect, for messages and reprs (never a secret)."""
    user = f" user={client.username!r}" if client.username else ""
    return f"{client.host}:{client.effective_port} {client.security.name}{user}"
