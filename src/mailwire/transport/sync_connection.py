"""A blocking connection to the server: a socket, optionally wrapped in TLS."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl

from python_socks.sync import Proxy as SocksConnector

from mailwire.conversation.requests import TlsDetails, TransportDetails
from mailwire.errors import ConnectionLostError
from mailwire.transport.certificates import check_with_callback
from mailwire.transport.endpoint import Endpoint
from mailwire.transport.errors import translate
from mailwire.transport.proxy import python_socks_arguments, translate_proxy_error

RECEIVE_SIZE = 64 * 1024


class SyncConnection:
    """One TCP (and maybe TLS) connection; every OS error leaves as a mailwire error."""

    def __init__(self) -> None:
        self._endpoint: Endpoint | None = None
        self._socket: socket.socket | None = None
        self._timeout: float | None = None

    def open(self, endpoint: Endpoint, *, tls: bool, timeout: float) -> TransportDetails:
        self.close()
        self._endpoint = endpoint
        self._socket = _connect(endpoint, timeout)
        self._timeout = timeout
        return self.start_tls(timeout=timeout) if tls else self._details(None)

    def start_tls(self, *, timeout: float) -> TransportDetails:
        sock = self._require_socket()
        try:
            sock.settimeout(timeout)
            self._timeout = timeout
            endpoint = self._require_endpoint()
            wrapped = endpoint.ssl_context.wrap_socket(
                sock, server_hostname=endpoint.server_hostname
            )
            self._socket = wrapped
            check_with_callback(wrapped.getpeercert(binary_form=True),
                                endpoint.server_hostname, endpoint.tls)
        except Exception as error:
            self.close()
            raise translate(error, "TLS handshake", self._where(), timeout) from error
        certificate = wrapped.getpeercert(binary_form=True)
        return self._details(TlsDetails(wrapped.version() or "", (wrapped.cipher() or ("",))[0],
                                        certificate))

    def send(self, data: bytes, phase: str, timeout: float) -> None:
        sock = self._require_socket()
        try:
            if timeout != self._timeout:
                sock.settimeout(timeout)
                self._timeout = timeout
            sock.sendall(data)
        except Exception as error:
            raise translate(error, phase, self._where(), timeout) from error

    def receive(self, phase: str, timeout: float) -> bytes:
        sock = self._require_socket()
        try:
            if timeout != self._timeout:
                sock.settimeout(timeout)
                self._timeout = timeout
            return sock.recv(RECEIVE_SIZE)
        except Exception as error:
            raise translate(error, phase, self._where(), timeout) from error

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
            raise ConnectionLostError("not connected")
        return self._socket

    def _require_endpoint(self) -> Endpoint:
        if self._endpoint is None:
            raise ConnectionLostError("not connected")
        return self._endpoint

    def _where(self) -> str:
        return self._endpoint.describe() if self._endpoint else "the server"

    def _details(self, tls: TlsDetails | None) -> TransportDetails:
        sock = self._require_socket()
        try:
            return TransportDetails(sock.getsockname(), sock.getpeername(), tls)
        except OSError as error:
            raise translate(error, "connect", self._where(), 0) from error


def _connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    """A connected TCP socket to the server, directly or through the proxy."""
    host, port = endpoint.server_hostname, endpoint.port
    proxy = endpoint.proxy
    if proxy is None:
        try:
            return socket.create_connection((host, port), timeout, source_address=endpoint.bind)
        except OSError as error:
            raise (endpoint.bind_error(error)
                   or translate(error, "connect", endpoint.describe(), timeout)) from error
    try:
        connector = SocksConnector(**python_socks_arguments(proxy))
        sock: socket.socket = connector.connect(host, port, timeout=timeout,
                                                local_addr=endpoint.bind)
    except OSError as error:
        bind_error = endpoint.bind_error(error.__cause__ if isinstance(error.__cause__, OSError)
                                         else error)
        raise (bind_error or translate_proxy_error(error, proxy, endpoint.describe(),
                                                   timeout)) from None
    except Exception as error:
        raise translate_proxy_error(error, proxy, endpoint.describe(), timeout) from None
    sock.settimeout(timeout)
    return sock
