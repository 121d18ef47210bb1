"""A blocking connection to the server: a socket, optionally wrapped in TLS."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl

from mailwire.conversation.requests import TlsDetails, TransportDetails
from mailwire.transport.endpoint import Endpoint
from mailwire.transport.errors import translate

RECEIVE_SIZE = 64 * 1024


class SyncConnection:
    """One TCP (and maybe TLS) connection; every OS error leaves as a mailwire error."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._socket: socket.socket | None = None
        self._timeout: float | None = None

    def open(self, *, tls: bool, timeout: float) -> TransportDetails:
        where = self.endpoint.describe()
        try:
            self._socket = socket.create_connection(
                (self.endpoint.host.strip("[]"), self.endpoint.port), timeout=timeout
            )
            self._timeout = timeout
        except Exception as error:
            raise translate(error, "connect", where, timeout) from error
        return self.start_tls(timeout=timeout) if tls else self._details(None)

    def start_tls(self, *, timeout: float) -> TransportDetails:
        sock = self._require_socket()
        try:
            sock.settimeout(timeout)
            self._timeout = timeout
            wrapped = self.endpoint.ssl_context.wrap_socket(
                sock, server_hostname=self.endpoint.server_hostname
            )
        except Exception as error:
            self.close()
            raise translate(error, "TLS handshake", self.endpoint.describe(), timeout) from error
        self._socket = wrapped
        return self._details(TlsDetails(wrapped.version() or "", (wrapped.cipher() or ("",))[0]))

    def send(self, data: bytes, phase: str, timeout: float) -> None:
        sock = self._require_socket()
        try:
            if timeout != self._timeout:
                sock.settimeout(timeout)
                self._timeout = timeout
            sock.sendall(data)
        except Exception as error:
            raise translate(error, phase, self.endpoint.describe(), timeout) from error

    def receive(self, phase: str, timeout: float) -> bytes:
        sock = self._require_socket()
        try:
            if timeout != self._timeout:
                sock.settimeout(timeout)
                self._timeout = timeout
            return sock.recv(RECEIVE_SIZE)
        except Exception as error:
            raise translate(error, phase, self.endpoint.describe(), timeout) from error

    def is_quiet(self) -> bool:
        """True when the idle connection is open and the server has said nothing since.

        An idle SMTP server only speaks to close (421) or closes outright, so anything readable
        means the connection is finished.
        """
        sock = self._socket
        if sock is None or sock.fileno() < 0:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _require_socket(self) -> socket.socket:
        if self._socket is None:
            from mailwire.errors import ConnectionLostError

            raise ConnectionLostError("not connected")
        return self._socket

    def _details(self, tls: TlsDetails | None) -> TransportDetails:
        sock = self._require_socket()
        try:
            return TransportDetails(sock.getsockname(), sock.getpeername(), tls)
        except OSError as error:
            raise translate(error, "connect", self.endpoint.describe(), 0) from error
