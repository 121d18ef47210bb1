"""An asyncio connection to the server, on a small protocol of its own.

A ``Protocol`` (rather than streams) keeps one receive buffer that this module controls: before a
STARTTLS upgrade it must be empty, or plaintext injected by an attacker would be read as if it
had come over TLS; and it is bounded: above ``MAX_BUFFERED`` bytes the transport stops reading
until the conversation takes what is there, so a server that floods the connection (while the
client is idle or busy writing) fills the kernel's buffers, not this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from typing import Any

from python_socks.async_.asyncio import Proxy as SocksConnector

from mailwire.errors import ConnectionLostError, SmtpSecurityError
from mailwire.transport import resumption
from mailwire.transport.certificates import check_with_callback
from mailwire.transport.details import TlsDetails, TransportDetails
from mailwire.transport.endpoint import Endpoint, EndpointHolder
from mailwire.transport.errors import translate, translate_handshake
from mailwire.transport.first_hop import BindFailure, FirstHop
from mailwire.transport.proxy import (
    check_target,
    http_reply_complete,
    proxy_unreachable,
    python_socks_arguments,
    reads_reply_to_blank_line,
    translate_proxy_error,
)
from mailwire.transport.tls import describe_offered

_HANDSHAKE_TIMEOUT_MARGIN = 1.0
MAX_BUFFERED = 256 * 1024
"""Received bytes held before the transport stops reading from the socket."""


class _ReceiveProtocol(asyncio.Protocol):
    """Collects received bytes and wakes the one reader waiting for them."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.closed = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > MAX_BUFFERED and not self._reading_paused:
            assert self.transport is not None
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def take(self) -> bytes:
        """Everything received so far (reading resumes if it was paused)."""
        data = bytes(self.buffer)
        self.buffer.clear()
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    async def receive(self) -> bytes:
        while not self.buffer:
            if self.closed:
                if self.error is not None:
                    raise self.error
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.take()

    @property
    def write_paused(self) -> bool:
        return self._writable is not None

    async def writable(self) -> None:
        if self._writable is not None:
            await self._writable
        if self.closed:
            raise self.error or ConnectionResetError("connection closed")

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class AsyncConnection(EndpointHolder):
    """One TCP (and maybe TLS) connection on the running loop; errors leave as mailwire's."""

    def __init__(self) -> None:
        super().__init__()
        self._protocol: _ReceiveProtocol | None = None

    async def open(self, endpoint: Endpoint, *, tls: bool, timeout: float) -> TransportDetails:
        self.close()
        self._endpoint = endpoint
        loop = asyncio.get_running_loop()
        try:
            sock = await _connect(endpoint, timeout)
        except ConnectionLostError as error:
            if not tls:
                raise
            # Accepted, then reset before a ClientHello could go out: for implicit TLS that
            # is a handshake the server cut short, as the blocking transport reports it.
            raise translate_handshake(error, endpoint.describe(), timeout,
                                      describe_offered(endpoint.tls)) from error
        protocol = _ReceiveProtocol()
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: protocol, sock=sock)
        except BaseException as error:
            sock.close()
            if not isinstance(error, Exception):
                raise
            if tls:
                raise translate_handshake(error, endpoint.describe(), timeout,
                                          describe_offered(endpoint.tls)) from error
            raise translate(error, "connect", endpoint.describe(), timeout) from error
        self._protocol = protocol
        return await self.start_tls(timeout=timeout) if tls else self._details(None)

    async def start_tls(self, *, timeout: float) -> TransportDetails:
        protocol = self._require_protocol()
        endpoint = self._require_endpoint()
        if protocol.buffer:
            self.close()
            raise SmtpSecurityError("data arrived before the TLS handshake (plaintext injection)")
        transport = protocol.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                # asyncio's own handshake timeout aborts the connection, which would read as the
                # server dropping the handshake: it is set later than ours, which always wins.
                with resumption.offering(resumption.recall(endpoint.ssl_context,
                                                           endpoint.tls_server)):
                    upgraded = await loop.start_tls(
                        transport, protocol, endpoint.ssl_context,
                        server_hostname=endpoint.server_hostname,
                        ssl_handshake_timeout=timeout + _HANDSHAKE_TIMEOUT_MARGIN,
                    )
            if upgraded is None:
                raise ConnectionLostError("the connection closed during the TLS handshake")
            protocol.transport = upgraded
            ssl_object = upgraded.get_extra_info("ssl_object")
            certificate = ssl_object.getpeercert(binary_form=True)
            check_with_callback(certificate, endpoint.server_hostname, endpoint.tls)
        except Exception as error:
            self.close()
            raise translate_handshake(error, endpoint.describe(), timeout,
                                      describe_offered(endpoint.tls)) from error
        return self._details(TlsDetails(ssl_object.version() or "",
                                        (ssl_object.cipher() or ("",))[0], certificate,
                                        ssl_object.session_reused))

    def write_now(self, data: bytes, phase: str, timeout: float) -> None:
        """Hand ``data`` to the transport (it never waits); ``must_drain`` then says whether
        the caller should await ``drain`` before writing more."""
        protocol = self._require_protocol()
        transport = protocol.transport
        try:
            assert transport is not None
            if protocol.closed or transport.is_closing():
                raise protocol.error or ConnectionResetError("connection closed")
            transport.write(data)
        except Exception as error:
            raise translate(error, phase, self._where(), timeout) from error

    @property
    def must_drain(self) -> bool:
        protocol = self._protocol
        return protocol is not None and protocol.write_paused

    async def drain(self, phase: str, timeout: float) -> None:
        """Wait while the transport holds more than it wants to."""
        protocol = self._require_protocol()
        try:
            async with asyncio.timeout(timeout):
                await protocol.writable()
        except Exception as error:
            raise translate(error, phase, self._where(), timeout) from error

    def read_now(self) -> bytes | None:
        """The bytes received so far, or None when there are none (never waits)."""
        protocol = self._protocol
        if protocol is None or not protocol.buffer:
            return None
        return protocol.take()

    async def send(self, data: bytes, phase: str, timeout: float) -> None:
        """Write ``data`` and wait while the transport is full."""
        self.write_now(data, phase, timeout)
        if self.must_drain:
            await self.drain(phase, timeout)

    async def receive(self, phase: str, timeout: float) -> bytes:
        protocol = self._require_protocol()
        if protocol.buffer:
            return protocol.take()
        try:
            async with asyncio.timeout(timeout):
                return await protocol.receive()
        except Exception as error:
            raise translate(error, phase, self._where(), timeout) from error

    def is_quiet(self) -> bool:
        protocol = self._protocol
        return (protocol is not None and not protocol.closed and not protocol.buffer
                and protocol.transport is not None and not protocol.transport.is_closing())

    def close(self) -> None:
        """Close the connection; what was written and not yet sent is dropped (a connection is
        closed with data pending only when it is given up, and a message cut short must not
        reach the server as a whole)."""
        protocol, self._protocol = self._protocol, None
        if protocol is None or protocol.transport is None:
            return
        transport = protocol.transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and self._endpoint is not None:
            with contextlib.suppress(Exception):
                resumption.remember(self._endpoint.ssl_context, self._endpoint.tls_server,
                                    ssl_object.session)
        if protocol.closed or transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def _require_protocol(self) -> _ReceiveProtocol:
        if self._protocol is None:
            raise ConnectionLostError("not connected")
        return self._protocol

    def _details(self, tls: TlsDetails | None) -> TransportDetails:
        transport = self._require_protocol().transport
        assert transport is not None
        return TransportDetails(tuple(transport.get_extra_info("sockname") or ()),
                                tuple(transport.get_extra_info("peername") or ()), tls)


async def _connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    """A connected, non-blocking TCP socket to the server, directly or through the proxy.

    The same steps and errors as ``sync_connection._connect``.
    """
    proxy = endpoint.proxy
    if proxy is None:
        try:
            return await _open_tcp(endpoint, timeout)
        except BindFailure as failure:
            raise endpoint.bind_failure(failure.error) from None
        except OSError as error:
            raise translate(error, "connect", endpoint.describe(), timeout) from error
    check_target(endpoint.server_hostname, proxy)
    try:
        sock = await _open_tcp(endpoint, timeout)
    except BindFailure as failure:
        raise endpoint.bind_failure(failure.error) from None
    except OSError as error:
        raise proxy_unreachable(error, proxy, timeout) from None
    try:
        return await _proxy_handshake(sock, endpoint, timeout)
    except Exception as error:
        raise translate_proxy_error(error, proxy, endpoint.describe(), timeout) from None


async def _open_tcp(endpoint: Endpoint, timeout: float) -> socket.socket:
    """Like ``sync_connection._open_tcp``, on the loop: a non-blocking socket connected to the
    first hop, a failed bind told apart from the rest.

    Each connect attempt has ``timeout``, as on a blocking socket; resolving the name has it
    too (the blocking transport cannot bound ``getaddrinfo``; here it costs nothing).
    """
    host, port = endpoint.connect_address
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    hop = FirstHop(host, infos, endpoint.bind)
    for sock, address in hop.sockets(blocking_timeout=None):
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, address)
        except OSError as error:  # TimeoutError included, as socket.timeout in the sync one
            hop.connect_failed(sock, _as_blocking_socket_error(error))
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    hop.give_up()


def _as_blocking_socket_error(error: OSError) -> OSError:
    """The error a blocking ``connect`` gives for ``error``'s errno.

    asyncio replaces the reason with ``Connect call failed (address)``; messages say
    "connection refused" on both transports.
    """
    if isinstance(error, TimeoutError) or not error.errno:
        return error
    return OSError(error.errno, os.strerror(error.errno))  # the errno's OSError subclass


class _GivenConnection:
    """python-socks' ``forward`` hook: hands it the TCP connection already made to the proxy
    (see ``sync_connection._GivenConnection``)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    async def connect(self, *_args: Any, **_kwargs: Any) -> socket.socket:
        return self._sock


class _HttpReplyLoop:
    """The running loop as python-socks sees it during an HTTP CONNECT handshake: reads return
    the proxy's reply up to its blank line and never a byte of the SMTP greeting behind it.

    python-socks' asyncio stream reads the reply with one ``loop.sock_recv(sock, 65536)``. The
    blocking transport's ``HttpReplySocket`` overrides ``recv``, which only helps on loops whose
    ``sock_recv`` calls it (selector loops, uvloop): the proactor loop, Windows' default, reads
    the descriptor itself. Reading here a byte at a time through the real loop works on any.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    async def sock_recv(self, sock: socket.socket, _size: int) -> bytes:
        reply = bytearray()
        while not http_reply_complete(reply):
            byte = await self._loop.sock_recv(sock, 1)
            if not byte:
                break
            reply += byte
        return bytes(reply)


async def _proxy_handshake(sock: socket.socket, endpoint: Endpoint,
                           timeout: float) -> socket.socket:
    proxy = endpoint.proxy
    assert proxy is not None
    loop: Any = asyncio.get_running_loop()
    if reads_reply_to_blank_line(proxy):
        loop = _HttpReplyLoop(loop)
    try:
        forward: Any = _GivenConnection(sock)  # duck-typed: python-socks only calls connect()
        connector = SocksConnector(**python_socks_arguments(proxy), forward=forward, loop=loop)
        await connector.connect(endpoint.server_hostname, endpoint.port, timeout=timeout)
    except BaseException:
        sock.close()
        raise
    return sock
