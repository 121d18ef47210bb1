"""A blocking connection to the server: a socket, optionally wrapped in TLS."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from typing import Any

from python_socks.sync import Proxy as SocksConnector

from mailwire.errors import ConnectionLostError
from mailwire.transport import resumption
from mailwire.transport.certificates import check_with_callback
from mailwire.transport.deadline import DeadlineSocket, handshake_within
from mailwire.transport.details import TlsDetails, TransportDetails
from mailwire.transport.endpoint import Endpoint, EndpointHolder
from mailwire.transport.errors import translate, translate_handshake
from mailwire.transport.first_hop import BindFailure, FirstHop
from mailwire.transport.proxy import (
    HttpReplySocket,
    check_target,
    proxy_unreachable,
    python_socks_arguments,
    reads_reply_to_blank_line,
    translate_proxy_error,
)
from mailwire.transport.tls import describe_offered

RECEIVE_SIZE = 64 * 1024


class SyncConnection(EndpointHolder):
    """One TCP (and maybe TLS) connection; every OS error leaves as a mailwire error."""

    def __init__(self) -> None:
        super().__init__()
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
                sock, server_hostname=endpoint.server_hostname, do_handshake_on_connect=False,
                session=resumption.recall(endpoint.ssl_context, endpoint.tls_server),
            )
            self._socket = wrapped
            handshake_within(wrapped, timeout)
            check_with_callback(wrapped.getpeercert(binary_form=True),
                                endpoint.server_hostname, endpoint.tls)
        except Exception as error:
            self.close()
            offered = describe_offered(self._endpoint.tls) if self._endpoint else "?"
            raise translate_handshake(error, self._where(), timeout, offered) from error
        certificate = wrapped.getpeercert(binary_form=True)
        return self._details(TlsDetails(wrapped.version() or "", (wrapped.cipher() or ("",))[0],
                                        certificate, bool(wrapped.session_reused)))

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

    def poll(self) -> bytes:
        """What the server has sent so far, without waiting (empty when nothing)."""
        sock = self._require_socket()
        try:
            sock.settimeout(0.0)
            try:
                return sock.recv(RECEIVE_SIZE)
            finally:
                sock.settimeout(self._timeout)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return b""
        except Exception as error:
            raise translate(error, "reading", self._where(), self._timeout or 0.0) from error

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
        if isinstance(sock, ssl.SSLSocket) and self._endpoint is not None:
            with contextlib.suppress(Exception):
                resumption.remember(self._endpoint.ssl_context, self._endpoint.tls_server,
                                    sock.session)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _require_socket(self) -> socket.socket:
        if self._socket is None:
            raise ConnectionLostError("not connected")
        return self._socket

    def _details(self, tls: TlsDetails | None) -> TransportDetails:
        sock = self._require_socket()
        try:
            return TransportDetails(sock.getsockname(), sock.getpeername(), tls)
        except OSError as error:
            self.close()
            raise ConnectionLostError(f"the connection to {self._where()} was lost right after "
                                      f"it was made ({error.strerror or error})") from error


def _connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    """A connected TCP socket to the server, directly or through the proxy."""
    proxy = endpoint.proxy
    if proxy is None:
        try:
            return _without_nagle(_open_tcp(endpoint, timeout))
        except BindFailure as failure:
            raise endpoint.bind_failure(failure.error) from None
        except OSError as error:
            raise translate(error, "connect", endpoint.describe(), timeout) from error
    check_target(endpoint.server_hostname, proxy)
    try:
        sock = _open_tcp(endpoint, timeout)
    except BindFailure as failure:
        raise endpoint.bind_failure(failure.error) from None
    except OSError as error:
        raise proxy_unreachable(error, proxy, timeout) from None
    try:
        return _proxy_handshake(sock, endpoint, timeout)
    except Exception as error:
        raise translate_proxy_error(error, proxy, endpoint.describe(), timeout) from None


def _open_tcp(endpoint: Endpoint, timeout: float) -> socket.socket:
    """``socket.create_connection`` to the first hop, telling a failed bind from the rest."""
    host, port = endpoint.connect_address
    hop = FirstHop(host, socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM), endpoint.bind)
    for sock, address in hop.sockets(blocking_timeout=timeout):
        try:
            sock.connect(address)
        except OSError as error:
            hop.connect_failed(sock, error)
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    hop.give_up()


class _GivenConnection:
    """python-socks' ``forward`` hook: hands it the TCP connection already made to the proxy.

    python-socks would connect by itself; doing it here keeps bind failures apart from an
    unreachable proxy and lets the HTTP reply be read without swallowing the greeting.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def connect(self, *_args: Any, **_kwargs: Any) -> socket.socket:
        return self._sock


def _proxy_handshake(sock: socket.socket, endpoint: Endpoint, timeout: float) -> socket.socket:
    proxy = endpoint.proxy
    assert proxy is not None
    bounded = (HttpReplySocket if reads_reply_to_blank_line(proxy)
               else DeadlineSocket).adopt(sock, timeout)
    try:
        forward: Any = _GivenConnection(bounded)  # duck-typed: python-socks only calls connect()
        connector = SocksConnector(**python_socks_arguments(proxy), forward=forward)
        connector.connect(endpoint.server_hostname, endpoint.port, timeout=timeout)
        sock = bounded.release()
    except BaseException:
        bounded.close()
        raise
    sock.settimeout(timeout)
    return _without_nagle(sock)


def _without_nagle(sock: socket.socket) -> socket.socket:
    """Send small writes (commands, pipelined batches) at once instead of waiting for ACKs."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
