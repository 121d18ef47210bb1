"""Trying the resolved addresses of the first hop (the server, or the proxy) in turn.

Both transports connect the same way: one socket per address, bound to the local address when
one is set, then connected; a failed bind is kept apart from a failed connect so that the error
can name the local address. Only the connect itself differs (blocking or awaited), so it is left
to the caller.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, NoReturn


class BindFailure(Exception):
    """No socket could be bound to the local address; ``error`` is the first failure."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


class FirstHop:
    """The attempts at the first hop; failures are recorded as they happen."""

    def __init__(self, host: str, infos: list[tuple[Any, ...]],
                 bind: tuple[str, int] | None) -> None:
        self._host = host
        self._infos = infos
        self._bind = bind
        self._bind_failure: OSError | None = None
        self._connect_failure: OSError | None = None

    def sockets(self, *, blocking_timeout: float | None) -> Iterator[tuple[socket.socket, Any]]:
        """A new socket, bound where asked, and the address to connect it to, per address.

        With ``blocking_timeout`` None the sockets are non-blocking (for the event loop).
        """
        for family, kind, protocol, _name, address in self._infos:
            sock = socket.socket(family, kind, protocol)
            if blocking_timeout is None:
                sock.setblocking(False)
            else:
                sock.settimeout(blocking_timeout)
            if self._bind is not None:
                try:
                    sock.bind(self._bind)
                except OSError as error:
                    self._bind_failure = self._bind_failure or error
                    sock.close()
                    continue
            yield sock, address

    def connect_failed(self, sock: socket.socket, error: OSError) -> None:
        self._connect_failure = self._connect_failure or error
        sock.close()

    def give_up(self) -> NoReturn:
        """Raise what stopped every attempt: the connect failure, else ``BindFailure``."""
        if self._connect_failure is not None:
            raise self._connect_failure
        if self._bind_failure is not None:
            raise BindFailure(self._bind_failure)
        raise OSError(f"no address for {self._host}")  # pragma: no cover - never empty
