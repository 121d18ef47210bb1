"""Blocking handshakes bounded as a whole: a socket whose reads and writes share one deadline,
and a TLS handshake that ends by its deadline however slowly the peer answers.

A blocking socket's timeout bounds each call: a peer that trickles one byte at a time could
stretch a proxy or TLS handshake without end. Here every call gets what is left of one budget.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import time
from typing import Any, TypeVar

S = TypeVar("S", bound="DeadlineSocket")


class DeadlineSocket(socket.socket):
    """A socket whose blocking ``recv``, ``send`` and ``sendall`` calls end at one deadline.

    Make one with ``DeadlineSocket.adopt(sock, seconds)`` and turn it back into a plain socket
    with ``release()`` once the handshake is over.
    """

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1,
                 fileno: int | None = None) -> None:
        super().__init__(family, type, proto, fileno)
        self._deadline: float | None = None

    @classmethod
    def adopt(cls: type[S], sock: socket.socket, seconds: float | None = None) -> S:
        """``sock`` as this class, bounded by ``seconds`` from now when given; ``sock`` itself is
        detached and must not be used."""
        timeout = sock.gettimeout()
        adopted = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        adopted.settimeout(timeout)
        if seconds is not None:
            adopted._deadline = time.monotonic() + seconds
        return adopted

    def release(self) -> socket.socket:
        """A plain socket on the same connection (this object is detached)."""
        timeout = self.gettimeout()
        plain = socket.socket(self.family, self.type, self.proto, fileno=self.detach())
        plain.settimeout(timeout)
        return plain

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        return super().recv(bufsize, flags)

    def send(self, data: Any, flags: int = 0) -> int:
        self._arm()
        return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._arm()
        super().sendall(data, flags)

    def _arm(self) -> None:
        if self._deadline is None:
            return
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the handshake did not finish in time")
        super().settimeout(remaining)


def handshake_within(sock: ssl.SSLSocket, seconds: float) -> None:
    """Complete the TLS handshake of ``sock`` (wrapped without handshaking) within ``seconds``
    as a whole; raises ``TimeoutError`` when they run out. The socket's timeout is kept."""
    timeout = sock.gettimeout()
    deadline = time.monotonic() + seconds
    sock.settimeout(0.0)
    try:
        with selectors.DefaultSelector() as selector:
            while True:
                try:
                    sock.do_handshake()
                    return
                except ssl.SSLWantReadError:
                    event = selectors.EVENT_READ
                except ssl.SSLWantWriteError:
                    event = selectors.EVENT_WRITE
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the TLS handshake did not finish in time")
                selector.register(sock, event)
                ready = selector.select(remaining)
                selector.unregister(sock)
                if not ready:
                    raise TimeoutError("the TLS handshake did not finish in time")
    finally:
        sock.settimeout(timeout)
