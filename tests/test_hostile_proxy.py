"""Both clients against proxies that stall, refuse or answer garbage (issue 6).

The proxies are raw socket servers written here (``RawServer`` from ``tests/support/chaos.py``):
each handler plays one misbehaving SOCKS5 or HTTP CONNECT proxy, and where the handshake
succeeds, the SMTP server behind it too. Every failure must be a ``ProxyError`` (with the
proxy's code where it gave one), a ``ProxyAuthenticationError`` or an ``SmtpTimeoutError``,
within ``timeout`` (plus ``SLACK``), and leave the client disconnected.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from mailwire import (
    ProxyAuthenticationError,
    ProxyError,
    SecurityOptions,
    SmtpTimeoutError,
)
from tests.support.chaos import (
    RawServer,
)
from tests.support.clients import Client, ClientFactory

TIMEOUT = 0.3
GREETING_TIMEOUT = 0.3
SLACK = 0.7
TARGET = ("127.0.0.1", 2525)  # never connected to: the proxies below only pretend

Handler = Callable[[socket.socket], None]
StartRaw = Callable[[Handler], RawServer]


@pytest.fixture
def through(make_client: ClientFactory) -> Callable[..., Client]:
    """``through(proxy_url, **options)``: a plaintext client for TARGET behind the proxy."""

    def make(proxy: str, **options: Any) -> Client:
        options.setdefault("timeout", TIMEOUT)
        options.setdefault("greeting_timeout", GREETING_TIMEOUT)
        return make_client(*TARGET, security=SecurityOptions.NONE, proxy=proxy, **options)

    return make


def fails(action: Callable[[], object], expected: type[BaseException],
          bound: float = 0.0) -> BaseException:
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        action()
    elapsed = time.monotonic() - started
    error = caught.value
    assert type(error) is expected, f"{type(error).__name__}: {error}"
    assert elapsed < bound + SLACK, f"{type(error).__name__} after {elapsed:.2f} s: {error}"
    return error


def wait(server: RawServer, seconds: float = 30.0) -> None:
    server.stopping.wait(seconds)


def smtp_behind(sock: socket.socket, first: bytes = b"220 behind.test ESMTP\r\n") -> None:
    """A tiny SMTP server on the proxied connection: greeting, EHLO, QUIT."""
    reader = sock.makefile("rb")
    if first:
        sock.sendall(first)
    for line in iter(reader.readline, b""):
        if line.upper().startswith(b"EHLO"):
            sock.sendall(b"250 behind.test\r\n")
        elif line.upper().startswith(b"QUIT"):
            sock.sendall(b"221 bye\r\n")
            return


# -- SOCKS5 --------------------------------------------------------------------------------


def socks5(after_greeting: bytes | None, *, connect_reply: bytes | None = None,
           auth_reply: bytes | None = None, then: Handler | None = None) -> Handler:
    """A SOCKS5 proxy that answers the greeting with ``after_greeting`` (None: silence), the
    RFC 1929 sub-negotiation with ``auth_reply``, the CONNECT with ``connect_reply``; then
    runs ``then`` on the connection, or stays silent until the client leaves."""

    def handle(sock: socket.socket) -> None:
        sock.recv(64)  # the greeting: version, methods
        if after_greeting is None:
            return silence(sock)
        sock.sendall(after_greeting)
        if auth_reply is not None:
            sock.recv(600)  # version, user name, password
            sock.sendall(auth_reply)
        if connect_reply is None:
            return silence(sock)
        sock.recv(600)  # the CONNECT request
        sock.sendall(connect_reply)
        if then is not None:
            then(sock)
        else:
            silence(sock)

    return handle


def silence(sock: socket.socket) -> None:
    """Say nothing until the client closes (or 30 s)."""
    sock.settimeout(30)
    while sock.recv(4096):
        pass


def socks5_reply(code: int) -> bytes:
    return bytes([5, code, 0, 1, 127, 0, 0, 1]) + TARGET[1].to_bytes(2, "big")


SOCKS5_FAILURES: dict[str, tuple[Handler, type[BaseException], int | None]] = {
    "garbage greeting reply": (socks5(b"HTTP/1.1 400 Bad Request\r\n\r\n"), ProxyError, None),
    "wrong version in greeting reply": (socks5(b"\x04\x00"), ProxyError, None),
    "closes after the greeting": (lambda sock: sock.recv(64) and None, ProxyError, None),
    "no acceptable method": (socks5(b"\x05\xff"), ProxyAuthenticationError, None),
    # Credentials demanded (username/password chosen though only "none" was offered).
    "method not offered": (socks5(b"\x05\x02", auth_reply=b"\x01\x00",
                                  connect_reply=socks5_reply(0)), ProxyAuthenticationError, None),
    "refused, code 5": (socks5(b"\x05\x00", connect_reply=socks5_reply(5)), ProxyError, 5),
    "not allowed, code 2": (socks5(b"\x05\x00", connect_reply=socks5_reply(2)), ProxyError, 2),
    "unknown reply code": (socks5(b"\x05\x00", connect_reply=socks5_reply(0x42)),
                           ProxyError, None),
    "garbage connect reply": (socks5(b"\x05\x00", connect_reply=b"\x00\x5a\x00\x00garbage"),
                              ProxyError, None),
    "closes after the connect request": (
        socks5(b"\x05\x00", connect_reply=b"", then=lambda sock: None), ProxyError, None),
}


@pytest.mark.parametrize("case", list(SOCKS5_FAILURES))
def test_socks5_proxy_failures(raw_server: StartRaw,
                               through: Callable[..., Client], case: str) -> None:
    handler, expected, code = SOCKS5_FAILURES[case]
    proxy = raw_server(handler)
    client = through(f"socks5://127.0.0.1:{proxy.port}")
    error = fails(client.connect, expected)
    assert isinstance(error, ProxyError)
    assert error.proxy_code == code
    assert "SOCKS5 proxy 127.0.0.1" in str(error)
    assert not client.is_connected


def test_socks5_proxy_refuses_the_credentials(raw_server: StartRaw,
                                              through: Callable[..., Client]) -> None:
    proxy = raw_server(socks5(b"\x05\x02", auth_reply=b"\x01\x01"))
    client = through(f"socks5://user:wrong-secret@127.0.0.1:{proxy.port}")
    error = fails(client.connect, ProxyAuthenticationError)
    assert "wrong-secret" not in str(error)
    assert "wrong-secret" not in repr(client.inner)  # type: ignore[attr-defined]
    assert not client.is_connected


SOCKS5_STALLS: dict[str, Handler] = {
    "silent": socks5(None),
    "after choosing a method": socks5(b"\x05\x00"),
    "after accepting the credentials": socks5(b"\x05\x02", auth_reply=b"\x01\x00"),
    "in the middle of the connect reply": socks5(b"\x05\x00", connect_reply=b"\x05\x00\x00",
                                                 then=silence),
}


@pytest.mark.parametrize("case", list(SOCKS5_STALLS))
def test_socks5_proxy_stalls(raw_server: StartRaw,
                             through: Callable[..., Client], case: str) -> None:
    proxy = raw_server(SOCKS5_STALLS[case])
    client = through(f"socks5://user:pw@127.0.0.1:{proxy.port}", greeting_timeout=5.0)
    error = fails(client.connect, SmtpTimeoutError, TIMEOUT)
    assert "proxy handshake" in error.phase
    assert error.seconds == TIMEOUT
    assert not client.is_connected


def test_socks5_target_that_never_greets(raw_server: StartRaw,
                                        through: Callable[..., Client]) -> None:
    """The proxy connects; the server behind it says nothing: the greeting's own bound."""
    proxy = raw_server(socks5(b"\x05\x00", connect_reply=socks5_reply(0), then=silence))
    client = through(f"socks5://127.0.0.1:{proxy.port}", timeout=5.0)
    error = fails(client.connect, SmtpTimeoutError, GREETING_TIMEOUT)
    assert error.phase == "greeting"


def test_socks5_success_then_smtp(raw_server: StartRaw,
                                  through: Callable[..., Client]) -> None:
    """The control case: the same scripted proxy, answering properly, works."""
    proxy = raw_server(socks5(b"\x05\x00", connect_reply=socks5_reply(0), then=smtp_behind))
    client = through(f"socks5://127.0.0.1:{proxy.port}", timeout=5.0)
    assert client.connect().greeting.text == "behind.test ESMTP"
    client.quit()


# -- HTTP CONNECT --------------------------------------------------------------------------


def http(reply: bytes | None, *, then: Handler | None = None, pause: float = 0.0) -> Handler:
    """An HTTP proxy that reads the CONNECT request and answers ``reply`` (None: silence),
    in two pieces ``pause`` seconds apart when ``pause``, then runs ``then``."""

    def handle(sock: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk:
                return
            request += chunk
        if reply is None:
            return silence(sock)
        if pause:
            sock.sendall(reply[:20])
            time.sleep(pause)
            sock.sendall(reply[20:])
        else:
            sock.sendall(reply)
        (then or silence)(sock)

    return handle


HTTP_OK = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: scripted\r\n\r\n"

HTTP_FAILURES: dict[str, tuple[Handler, type[BaseException], int | None]] = {
    "502 Bad Gateway": (http(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"),
                        ProxyError, 502),
    "403 Forbidden": (http(b"HTTP/1.1 403 Forbidden\r\n\r\n"), ProxyError, 403),
    "407 credentials": (http(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Proxy-Authenticate: Basic realm=\"x\"\r\n\r\n"),
                        ProxyAuthenticationError, 407),
    "garbage": (http(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), ProxyError, None),
    "binary garbage": (http(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x09\xdd\r\n\r\n"),
                       ProxyError, None),
    "status that is not a number": (http(b"HTTP/1.1 2OO OK\r\n\r\n"), ProxyError, None),
    "closes without a reply": (http(b"", then=lambda sock: None), ProxyError, None),
    "endless header": (http(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 200_000 + b"\r\n"),
                       ProxyError, None),
}


@pytest.mark.parametrize("case", list(HTTP_FAILURES))
def test_http_proxy_failures(raw_server: StartRaw,
                             through: Callable[..., Client], case: str) -> None:
    handler, expected, code = HTTP_FAILURES[case]
    proxy = raw_server(handler)
    client = through(f"http://127.0.0.1:{proxy.port}")
    error = fails(client.connect, expected)
    assert isinstance(error, ProxyError)
    assert error.proxy_code == code
    assert "HTTP proxy 127.0.0.1" in str(error)
    assert not client.is_connected


HTTP_STALLS: dict[str, Handler] = {
    "silent": http(None),
    "in the middle of the status line": http(b"HTTP/1.1 200 Conn", then=silence),
    "before the blank line": http(b"HTTP/1.1 200 Connection established\r\nVia: x\r\n",
                                  then=silence),
}


@pytest.mark.parametrize("case", list(HTTP_STALLS))
def test_http_proxy_stalls(raw_server: StartRaw,
                           through: Callable[..., Client], case: str) -> None:
    """A reply that never ends is the proxy's stall (the reply is not complete without its
    blank line), bounded by ``timeout``; never a greeting timeout behind a half-read reply."""
    proxy = raw_server(HTTP_STALLS[case])
    client = through(f"http://user:pw@127.0.0.1:{proxy.port}", greeting_timeout=5.0)
    error = fails(client.connect, SmtpTimeoutError, TIMEOUT)
    assert "proxy handshake" in error.phase
    assert not client.is_connected


@pytest.mark.parametrize("pause", [0.0, 0.1], ids=["greeting in the same packet", "in pieces"])
def test_http_proxy_reply_is_read_exactly(raw_server: StartRaw,
                                          through: Callable[..., Client], pause: float) -> None:
    """The 200 reply and the SMTP greeting in one packet (the greeting must not be lost), or
    the reply in two pieces (its tail must not reach the SMTP parser): both clients."""
    greeting = b"220 behind.test ESMTP\r\n"
    reply = HTTP_OK + greeting if not pause else HTTP_OK
    proxy = raw_server(http(reply, pause=pause,
                            then=lambda sock: smtp_behind(sock, b"" if not pause else greeting)))
    client = through(f"http://127.0.0.1:{proxy.port}", timeout=2.0, greeting_timeout=2.0)
    assert client.connect().greeting.text == "behind.test ESMTP"
    client.quit()
