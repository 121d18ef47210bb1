"""An asyncio connection to the server, on a small protocol of its own.

A ``Protocol`` (rather than streams) keeps one receive buffer that this module controls: before a
STARTTLS upgrade it must be empty, or plaintext injected by an attacker would be read as if it
had come over TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from python_socks.async_.asyncio import Proxy as SocksConnector

from mailwire.conversation.requests import Read, TlsDetails, TransportDetails, Write
from mailwire.errors import ConnectionLostError, SmtpSecurityError
from mailwire.transport.certificates import check_with_callback
from mailwire.transport.endpoint import Endpoint
from mailwire.transport.errors import translate
from mailwire.transport.proxy import python_socks_arguments, translate_proxy_error

NOT_DONE = object()
WRITTEN_MUST_DRAIN = object()


class _ReceiveProtocol(asyncio.Protocol):
    """Collects received bytes and wakes the one reader waiting for them."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.closed = False
        self.error: BaseException | None = None
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

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
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

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


class AsyncConnection:
    """One TCP (and maybe TLS) connection on the running loop; errors leave as mailwire's."""

    def __init__(self) -> None:
        self._endpoint: Endpoint | None = None
        self._protocol: _ReceiveProtocol | None = None

    async def open(self, endpoint: Endpoint, *, tls: bool, timeout: float) -> TransportDetails:
        self.close()
        self._endpoint = endpoint
        loop = asyncio.get_running_loop()
        sock = await _connect(endpoint, timeout)
        protocol = _ReceiveProtocol()
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(lambda: protocol, sock=sock)
        except Exception as error:
            sock.close()
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
                upgraded = await loop.start_tls(
                    transport, protocol, endpoint.ssl_context,
                    server_hostname=endpoint.server_hostname, ssl_handshake_timeout=timeout,
                )
            if upgraded is None:
                raise ConnectionLostError("the connection closed during the TLS handshake")
            protocol.transport = upgraded
            ssl_object = upgraded.get_extra_info("ssl_object")
            certificate = ssl_object.getpeercert(binary_form=True)
            check_with_callback(certificate, endpoint.server_hostname, endpoint.tls)
        except Exception as error:
            self.close()
            raise translate(error, "TLS handshake", endpoint.describe(), timeout) from error
        return self._details(TlsDetails(ssl_object.version() or "",
                                        (ssl_object.cipher() or ("",))[0], certificate))

    def perform_now(self, request: object) -> object:
        """A write that needs no waiting, or a read of bytes already received, done at once.

        ``NOT_DONE``: nothing was done, await the request. ``WRITTEN_MUST_DRAIN``: the data was
        written, await ``send(..., written=True)`` for the transport to drain."""
        protocol = self._protocol
        if protocol is None:
            return NOT_DONE
        if type(request) is Write:
            transport = protocol.transport
            if transport is None or protocol.closed or transport.is_closing():
                return NOT_DONE
            transport.write(request.data)
            return WRITTEN_MUST_DRAIN if protocol.write_paused else None
        if type(request) is Read and protocol.buffer:
            data = bytes(protocol.buffer)
            protocol.buffer.clear()
            return data
        return NOT_DONE

    async def send(self, data: bytes, phase: str, timeout: float, *,
                   written: bool = False) -> None:
        """Write ``data`` (unless ``written`` already) and wait while the transport is full."""
        protocol = self._require_protocol()
        try:
            assert protocol.transport is not None
            if protocol.closed or protocol.transport.is_closing():
                raise protocol.error or ConnectionResetError("connection closed")
            if not written:
                protocol.transport.write(data)
            if protocol.write_paused:
                async with asyncio.timeout(timeout):
                    await protocol.writable()
        except Exception as error:
            raise translate(error, phase, self._where(), timeout) from error

    async def receive(self, phase: str, timeout: float) -> bytes:
        protocol = self._require_protocol()
        if protocol.buffer:
            data = bytes(protocol.buffer)
            protocol.buffer.clear()
            return data
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
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort() if protocol.closed else protocol.transport.close()

    def _require_protocol(self) -> _ReceiveProtocol:
        if self._protocol is None:
            raise ConnectionLostError("not connected")
        return self._protocol

    def _require_endpoint(self) -> Endpoint:
        if self._endpoint is None:
            raise ConnectionLostError("not connected")
        return self._endpoint

    def _where(self) -> str:
        return self._endpoint.describe() if self._endpoint else "the server"

    def _details(self, tls: TlsDetails | None) -> TransportDetails:
        transport = self._require_protocol().transport
        assert transport is not None
        return TransportDetails(tuple(transport.get_extra_info("sockname") or ()),
                                tuple(transport.get_extra_info("peername") or ()), tls)


async def _connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    """A connected, non-blocking TCP socket to the server, directly or through the proxy."""
    host, port = endpoint.server_hostname, endpoint.port
    proxy = endpoint.proxy
    loop = asyncio.get_running_loop()
    if proxy is None:
        try:
            async with asyncio.timeout(timeout):
                return await _open_tcp(loop, host, port, endpoint.bind)
        except OSError as error:
            raise (endpoint.bind_error(error)
                   or translate(error, "connect", endpoint.describe(), timeout)) from error
    try:
        connector = SocksConnector(**python_socks_arguments(proxy))
        sock: socket.socket = await connector.connect(host, port, timeout=timeout,
                                                      local_addr=endpoint.bind)
    except OSError as error:
        cause = error.__cause__ if isinstance(error.__cause__, OSError) else error
        raise (endpoint.bind_error(cause)
               or translate_proxy_error(error, proxy, endpoint.describe(), timeout)) from None
    except Exception as error:
        raise translate_proxy_error(error, proxy, endpoint.describe(), timeout) from None
    return sock


async def _open_tcp(loop: asyncio.AbstractEventLoop, host: str, port: int,
                    bind: tuple[str, int] | None) -> socket.socket:
    """Resolve and connect like ``socket.create_connection``, without blocking the loop."""
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"no address for {host}")
    last: OSError | None = None
    for family, kind, proto, _name, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            if bind is not None:
                sock.bind(bind)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as error:
            sock.close()
            last = error
    assert last is not None
    raise last
