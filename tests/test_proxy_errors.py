"""Proxy failures become mailwire errors that say what failed, and proxy secrets stay secret.

Real proxies refuse credentials and targets; a free port stands for a proxy that is down; a
listening socket that never answers, and scripted servers, stand for proxies that stall or
misbehave. Small relays written here play HTTP proxies that send their CONNECT reply in
pieces or together with the SMTP greeting, which real proxies do under load. Every test that
connects runs against ``SmtpClient`` and ``AsyncSmtpClient`` (the ``make_client`` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mailwire import (
    AsyncSmtpClient,
    HttpProxy,
    ProxyAuthenticationError,
    ProxyError,
    SecurityOptions,
    SmtpClient,
    SmtpError,
    SmtpTimeoutError,
    SmtpUsageError,
    SocksProxy,
    SocksVersion,
)
from mailwire.client import simple_message
from mailwire.devserver import Certificates, DevServer, TlsMode
from mailwire.results import SendResult
from mailwire.transport.proxy import HttpReplySocket
from tests.support.clients import Client, ClientFactory
from tests.support.proxies import BLOCKED_HOST, LOOPBACK, RunningProxy, free_port
from tests.support.scripted import ScriptedServerFactory, Send, Stall, StallHandshake

SENDER = "sender@example.com"
RECIPIENT = "rcpt@example.org"
StartServer = Callable[..., DevServer]


def plain_client(make_client: ClientFactory, host: str, port: int, proxy: Any,
                 timeout: float = 5.0) -> Client:
    return make_client(host, port, security=SecurityOptions.NONE, proxy=proxy, timeout=timeout)


def send_mail(client: Client, subject: str, body: str) -> SendResult:
    """``send_mail`` of either client (the blocking face of the async one has only ``send``)."""
    return client.send(simple_message(SENDER, RECIPIENT, subject, body, None))


def assert_secret_hidden(secret: str, client: Client, error: BaseException,
                         log_text: str) -> None:
    assert secret not in repr(client.inner)
    assert secret not in repr(client.proxy)
    assert secret not in str(client.proxy)
    assert secret not in str(error)
    assert secret not in repr(error)
    assert secret not in log_text
    cause = error.__cause__
    while cause is not None:
        assert secret not in str(cause)
        cause = cause.__cause__


# -- refused credentials ----------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["socks5_auth_proxy", "http_auth_proxy"])
def test_wrong_proxy_password(
    request: pytest.FixtureRequest, fixture: str, make_client: ClientFactory,
    smtp_server: StartServer, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    running: RunningProxy = request.getfixturevalue(fixture)
    assert running.username and running.password
    wrong = running.password + "-not-it"
    server = smtp_server()
    proxy = (HttpProxy(running.host, running.port, running.username, wrong)
             if running.kind == "http"
             else SocksProxy(running.host, running.port, SocksVersion.SOCKS5,
                             running.username, wrong))
    client = plain_client(make_client, "localhost", server.port, proxy)

    with pytest.raises(ProxyAuthenticationError) as caught:
        send_mail(client, "never", "sent")

    assert "refused the credentials" in str(caught.value)
    assert running.kind.upper() in str(caught.value)
    if running.kind == "http":
        assert caught.value.proxy_code == 401  # tinyproxy: 401 for a wrong password
    assert server.messages == []
    assert_secret_hidden(wrong, client, caught.value, caplog.text)
    assert_secret_hidden(running.password, client, caught.value, caplog.text)


@pytest.mark.parametrize("fixture", ["socks5_auth_proxy", "http_auth_proxy"])
def test_missing_proxy_credentials(
    request: pytest.FixtureRequest, fixture: str, make_client: ClientFactory,
    smtp_server: StartServer,
) -> None:
    running: RunningProxy = request.getfixturevalue(fixture)
    server = smtp_server()
    client = plain_client(make_client, "localhost", server.port,
                          f"{running.scheme}://{running.host}:{running.port}")
    with pytest.raises(ProxyAuthenticationError) as caught:
        client.connect()
    if running.kind == "http":
        assert caught.value.proxy_code == 407
    assert server.messages == []


def test_proxy_password_in_url_stays_out_of_reprs_errors_and_logs(
    socks5_auth_proxy: RunningProxy, make_client: ClientFactory, smtp_server: StartServer,
    certificates: Certificates, caplog: pytest.LogCaptureFixture,
) -> None:
    """The good password too: a successful session logs nothing of it."""
    caplog.set_level(logging.DEBUG)
    password = socks5_auth_proxy.password
    assert password
    server = smtp_server(tls=TlsMode.STARTTLS)
    client = make_client("localhost", server.port, security="ssl_explicit",
                         proxy=socks5_auth_proxy.url.replace("socks5://", "socks5h://"),
                         ca_file=str(certificates.ca_file), timeout=5.0)
    with client:
        send_mail(client, "logged", "session")
        assert password not in repr(client.inner)
    assert "C: MAIL FROM" in caplog.text  # the protocol log was on
    assert password not in caplog.text
    assert password not in repr(client.proxy)
    assert len(server.messages) == 1


# -- the proxy is down, refuses the target, or cannot reach it --------------------------------


@pytest.mark.parametrize(
    "proxy",
    [
        lambda port: SocksProxy(LOOPBACK, port, SocksVersion.SOCKS4),
        lambda port: SocksProxy(LOOPBACK, port, SocksVersion.SOCKS5, "user", "secret-pw"),
        lambda port: f"http://user:secret-pw@{LOOPBACK}:{port}",
    ],
    ids=["socks4", "socks5", "http"],
)
def test_proxy_down(proxy: Callable[[int], object], make_client: ClientFactory,
                    smtp_server: StartServer) -> None:
    server = smtp_server()
    port = free_port()
    client = plain_client(make_client, LOOPBACK, server.port, proxy(port))
    with pytest.raises(ProxyError) as caught:
        client.connect()
    assert not isinstance(caught.value, ProxyAuthenticationError)
    assert "cannot reach the" in str(caught.value)
    assert f"proxy {LOOPBACK}:{port}" in str(caught.value)
    assert "refused" in str(caught.value)
    assert caught.value.proxy_code is None
    assert "secret-pw" not in str(caught.value)


@pytest.fixture
def blocked_server(smtp_server: StartServer) -> DevServer:
    """A server on BLOCKED_HOST, reachable directly: refusals come from the proxy."""
    server = smtp_server(host=BLOCKED_HOST)
    with SmtpClient(BLOCKED_HOST, server.port, security="none", timeout=5.0) as client:
        client.send_mail(SENDER, RECIPIENT, "direct", "reachable")
    server.wait_for_messages(1)
    server.clear()
    return server


@pytest.mark.parametrize(
    ("fixture", "scheme", "code"),
    [
        ("socks5_blocking_proxy", "socks5", 2),  # connection not allowed by ruleset
        ("socks5_blocking_proxy", "socks4", 0x5B),  # the same dante, asked in SOCKS4
        ("http_blocking_proxy", "http", 403),
    ],
)
def test_target_refused_by_the_proxy(
    request: pytest.FixtureRequest, fixture: str, scheme: str, code: int,
    make_client: ClientFactory, blocked_server: DevServer,
) -> None:
    running: RunningProxy = request.getfixturevalue(fixture)
    client = plain_client(make_client, BLOCKED_HOST, blocked_server.port,
                          f"{scheme}://{running.host}:{running.port}")
    with pytest.raises(ProxyError) as caught:
        send_mail(client, "never", "sent")
    assert not isinstance(caught.value, ProxyAuthenticationError)
    assert caught.value.proxy_code == code
    assert f"could not reach {BLOCKED_HOST}:{blocked_server.port}" in str(caught.value)
    assert f"proxy code {code}" in str(caught.value)
    assert blocked_server.messages == []


@pytest.mark.parametrize(
    ("fixture", "code"),
    [("socks5_proxy", 5), ("socks4_proxy", 0x5B), ("http_proxy", 500), ("socks4a_proxy", None)],
)
def test_target_down_behind_the_proxy(
    request: pytest.FixtureRequest, fixture: str, code: int | None, make_client: ClientFactory,
) -> None:
    """Nobody listens on the target port: each proxy kind says so its own way (``ssh -D``
    just closes the connection, so there is no code to report)."""
    running: RunningProxy = request.getfixturevalue(fixture)
    port = free_port()
    client = plain_client(make_client, LOOPBACK, port, running.url)
    with pytest.raises(ProxyError) as caught:
        client.connect()
    assert caught.value.proxy_code == code
    assert f"{LOOPBACK}:{port}" in str(caught.value)
    if code is None:
        assert "closed the connection without a reply" in str(caught.value)


# -- stalls -----------------------------------------------------------------------------------


@pytest.fixture
def silent_proxy() -> Iterator[tuple[str, int]]:
    """A socket that listens (the kernel completes TCP handshakes) and never says a word."""
    with socket.create_server((LOOPBACK, 0), backlog=8) as listener:
        yield LOOPBACK, listener.getsockname()[1]


@pytest.mark.parametrize("scheme", ["socks4", "socks4a", "socks5", "socks5h", "http"])
def test_proxy_that_never_answers_times_out(
    scheme: str, make_client: ClientFactory, silent_proxy: tuple[str, int],
) -> None:
    timeout = 0.5
    host, port = silent_proxy
    client = plain_client(make_client, "localhost", 25, f"{scheme}://{host}:{port}",
                          timeout=timeout)
    started = time.monotonic()
    with pytest.raises(SmtpTimeoutError) as caught:
        client.connect()
    elapsed = time.monotonic() - started
    assert timeout * 0.9 <= elapsed < timeout + 1.0
    assert "proxy handshake" in caught.value.phase
    assert f"{host}:{port}" in caught.value.phase
    assert caught.value.seconds == timeout


def test_socks5_proxy_that_stalls_after_choosing_a_method(
    make_client: ClientFactory, scripted_server: ScriptedServerFactory,
) -> None:
    """The proxy takes the greeting, accepts "no authentication", then goes quiet."""
    proxy = scripted_server(Send(b"\x05\x00"), Stall(5.0))
    client = plain_client(make_client, "localhost", 25, SocksProxy(proxy.host, proxy.port),
                          timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SmtpTimeoutError, match="proxy handshake"):
        client.connect()
    assert time.monotonic() - started < 1.5
    proxy.wait()
    received = b"".join(proxy.received)
    # Greeting (version 5, one method: none), then CONNECT to the name "localhost", port 25.
    assert received.startswith(b"\x05\x01\x00\x05\x01\x00\x03\x09localhost\x00\x19")


def test_http_proxy_records_the_connect_request_then_stalls(
    make_client: ClientFactory, scripted_server: ScriptedServerFactory,
) -> None:
    proxy = scripted_server(StallHandshake(5.0))
    client = plain_client(make_client, "localhost", 2525,
                          HttpProxy(proxy.host, proxy.port, "u", "pw"), timeout=0.5)
    with pytest.raises(SmtpTimeoutError):
        client.connect()
    proxy.wait()
    request = b"".join(proxy.received)
    assert request.startswith(b"CONNECT localhost:2525 HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dTpwdw==\r\n" in request  # base64("u:pw")


# -- HTTP proxies that send their reply in pieces or together with the greeting ---------------


@contextlib.contextmanager
def relaying_http_proxy(
    reply: Callable[[socket.socket, bytes], None],
) -> Iterator[tuple[tuple[str, int], list[bytes]]]:
    """A one-connection HTTP CONNECT proxy; ``reply(client, greeting)`` sends its answer,
    given the SMTP server's greeting, read before answering. Then it relays both ways."""
    requests: list[bytes] = []
    listener = socket.create_server((LOOPBACK, 0))

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve() -> None:
        client, _ = listener.accept()
        client.settimeout(5)
        request = b""
        while b"\r\n\r\n" not in request:
            request += client.recv(4096)
        requests.append(request)
        target = request.split(b" ")[1].decode()
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=5)
        greeting = upstream.recv(4096)
        reply(client, greeting)
        back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        back.start()
        pump(client, upstream)
        back.join(5)
        client.close()
        upstream.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield (LOOPBACK, listener.getsockname()[1]), requests
    finally:
        listener.close()
        thread.join(5)


HTTP_OK = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: relay\r\n\r\n"


def _together(client: socket.socket, greeting: bytes) -> None:
    client.sendall(HTTP_OK + greeting)


def _in_pieces(client: socket.socket, greeting: bytes) -> None:
    for piece in (HTTP_OK[:13], HTTP_OK[13:40], HTTP_OK[40:] + greeting[:5]):
        client.sendall(piece)
        time.sleep(0.05)
    client.sendall(greeting[5:])


@pytest.mark.parametrize("reply", [_together, _in_pieces], ids=["with-greeting", "in-pieces"])
def test_http_proxy_reply_is_read_exactly(
    reply: Callable[[socket.socket, bytes], None], make_client: ClientFactory,
    smtp_server: StartServer,
) -> None:
    """The greeting that shares a packet with the 200 is kept; a reply split in pieces is read
    whole, so none of it reaches the SMTP parser."""
    server = smtp_server()
    with relaying_http_proxy(reply) as ((host, port), requests):
        client = make_client("localhost", server.port, security="none",
                             proxy=HttpProxy(host, port), timeout=3.0, greeting_timeout=2.0)
        with client:
            info = client.connect()
            send_mail(client, "relayed", "through a chatty proxy")
    assert info.greeting.code == 220
    assert "mailwire devserver" in info.greeting.text
    assert requests[0].startswith(f"CONNECT localhost:{server.port} HTTP/1.1".encode())
    assert len(server.wait_for_messages(1)) == 1


def test_http_proxy_garbage_reply(
    make_client: ClientFactory, scripted_server: ScriptedServerFactory,
) -> None:
    proxy = scripted_server(StallHandshake(0.2), Send(b"SSH-2.0-OpenSSH\r\n\r\n"),
                            allow_errors=True)
    client = plain_client(make_client, "localhost", 25, HttpProxy(proxy.host, proxy.port),
                          timeout=2.0)
    with pytest.raises(ProxyError, match="bad reply"):
        client.connect()


# -- what never reaches a proxy ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example\r\nX-Injected: 1", "a b", "nul\x00.example"])
@pytest.mark.parametrize("scheme", ["http", "socks5h", "socks4a"])
def test_server_name_that_would_inject_into_the_proxy_request(
    host: str, scheme: str, make_client: ClientFactory, silent_proxy: tuple[str, int],
) -> None:
    proxy_host, proxy_port = silent_proxy
    client = plain_client(make_client, host, 25, f"{scheme}://{proxy_host}:{proxy_port}",
                          timeout=0.5)
    with pytest.raises(SmtpUsageError, match="cannot be sent to a proxy"):
        client.connect()


@pytest.mark.parametrize("scheme", ["socks4", "socks4a"])
def test_socks4_cannot_reach_an_ipv6_address(
    scheme: str, make_client: ClientFactory, silent_proxy: tuple[str, int],
) -> None:
    proxy_host, proxy_port = silent_proxy
    client = plain_client(make_client, "::1", 25, f"{scheme}://{proxy_host}:{proxy_port}",
                          timeout=0.5)
    with pytest.raises(SmtpUsageError, match="cannot reach the IPv6 address"):
        client.connect()


@pytest.mark.parametrize(
    "url",
    [
        "socks5://user:se/cret@127.0.0.1:1080",  # unescaped / cuts the authority short
        "socks5://user:se#cret@127.0.0.1:1080",
        "user:secret@127.0.0.1:1080",  # no scheme
        "socks5://user:secret@[not-an-address:1080",
        "ftp://user:secret@127.0.0.1:21",
        "socks5://user:secret@127.0.0.1:port",
    ],
)
def test_bad_proxy_url_error_hides_the_password(url: str) -> None:
    client = SmtpClient("localhost")
    with pytest.raises(SmtpUsageError) as caught:
        client.proxy = url
    assert "cret" not in str(caught.value)
    assert "not a proxy URL" in str(caught.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SocksProxy("h", 1080, SocksVersion.SOCKS5, "user", "pässwörd"),
        lambda: SocksProxy("h", 1080, SocksVersion.SOCKS5, "user", "x" * 256),
        lambda: SocksProxy("h", 1080, SocksVersion.SOCKS4, "us\x00er"),
        lambda: HttpProxy("h", 8080, "us:er", "pw"),
        lambda: HttpProxy("h", 8080, "user", "pw\r\nX: y"),
        lambda: HttpProxy("h", 0),
        lambda: SocksProxy("", 1080),
    ],
)
def test_proxy_settings_that_cannot_be_sent_are_refused_up_front(
    make: Callable[[], object],
) -> None:
    with pytest.raises(SmtpUsageError) as caught:
        make()
    for secret in ("pässwörd", "x" * 20, "pw\r\n"):
        assert secret not in str(caught.value)


def test_proxy_errors_are_connection_errors() -> None:
    """Callers can catch every proxy failure as a connection failure, and timeouts as such."""
    assert issubclass(ProxyAuthenticationError, ProxyError)
    assert issubclass(ProxyError, ConnectionError)
    assert issubclass(SmtpTimeoutError, TimeoutError)
    assert issubclass(ProxyError, SmtpError)


# -- both clients fail alike -------------------------------------------------------------------


def _proxy_down(_request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"host": LOOPBACK, "port": 25, "proxy": f"http://u:pw@{LOOPBACK}:{free_port()}"}


def _server_down(_request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"host": LOOPBACK, "port": free_port()}


def _proxy_unresolvable(_request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"host": "localhost", "port": 25, "proxy": "socks5://no-such-host.invalid:1080"}


def _target_down_behind(fixture: str) -> Callable[[pytest.FixtureRequest], dict[str, Any]]:
    def scenario(request: pytest.FixtureRequest) -> dict[str, Any]:
        running: RunningProxy = request.getfixturevalue(fixture)
        return {"host": LOOPBACK, "port": free_port(), "proxy": running.url}

    return scenario


def _target_blocked(request: pytest.FixtureRequest) -> dict[str, Any]:
    running: RunningProxy = request.getfixturevalue("http_blocking_proxy")
    return {"host": BLOCKED_HOST, "port": 2525, "proxy": running.url}


def _bind_not_here(proxied: bool) -> Callable[[pytest.FixtureRequest], dict[str, Any]]:
    def scenario(_request: pytest.FixtureRequest) -> dict[str, Any]:
        proxy = SocksProxy(LOOPBACK, free_port()) if proxied else None
        return {"host": LOOPBACK, "port": free_port(), "proxy": proxy,
                "bind_endpoint": ("192.0.2.1", 0)}

    return scenario


def _silent_proxy(request: pytest.FixtureRequest) -> dict[str, Any]:
    host, port = request.getfixturevalue("silent_proxy")
    return {"host": "localhost", "port": 25, "proxy": f"socks5h://{host}:{port}",
            "timeout": 0.3}


def _garbage_reply(request: pytest.FixtureRequest) -> dict[str, Any]:
    scripted: ScriptedServerFactory = request.getfixturevalue("scripted_server")
    proxy = scripted(StallHandshake(0.2), Send(b"SSH-2.0-OpenSSH\r\n\r\n"), repeat=True,
                     allow_errors=True)
    return {"host": "localhost", "port": 25, "proxy": HttpProxy(proxy.host, proxy.port)}


def _name_not_for_a_proxy(_request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"host": "a b", "port": 25, "proxy": f"http://{LOOPBACK}:1"}


@pytest.mark.parametrize(
    "scenario",
    [
        _proxy_down,
        _server_down,
        _proxy_unresolvable,
        _target_down_behind("socks5_proxy"),
        _target_down_behind("socks4a_proxy"),
        _target_down_behind("http_proxy"),
        _target_blocked,
        _bind_not_here(proxied=False),
        _bind_not_here(proxied=True),
        _silent_proxy,
        _garbage_reply,
        _name_not_for_a_proxy,
    ],
    ids=["proxy-down", "server-down", "proxy-unresolvable", "socks5-target-down",
         "socks4a-target-down", "http-target-down", "http-target-blocked", "bind-direct",
         "bind-proxy", "silent-proxy", "garbage-reply", "name-not-for-a-proxy"],
)
def test_both_clients_fail_with_the_same_error(
    scenario: Callable[[pytest.FixtureRequest], dict[str, Any]], request: pytest.FixtureRequest,
) -> None:
    """Not just the same kind of failure: the same exception type, message and proxy code."""
    options = scenario(request)
    options.setdefault("timeout", 2.0)
    options.setdefault("security", SecurityOptions.NONE)
    with pytest.raises(SmtpError) as sync_failure:
        SmtpClient(**options).connect()

    async def connect_async() -> None:
        client = AsyncSmtpClient(**options)
        try:
            await client.connect()
        finally:
            await client.close()

    with pytest.raises(SmtpError) as async_failure:
        asyncio.run(connect_async())
    sync_error, async_error = sync_failure.value, async_failure.value
    assert type(async_error) is type(sync_error)
    assert str(async_error) == str(sync_error)
    assert getattr(async_error, "proxy_code", None) == getattr(sync_error, "proxy_code", None)


def test_http_reply_socket_stops_at_the_blank_line_blocking_or_not() -> None:
    """The socket handed to python-socks: whole reply header, nothing after it, also on a
    non-blocking socket that gets the reply in pieces (as asyncio's ``sock_recv`` drives it)."""
    ours, theirs = socket.socketpair()
    with theirs:
        ours.setblocking(False)
        reply = HttpReplySocket.adopt(ours)
        theirs.sendall(HTTP_OK[:20])
        with pytest.raises(BlockingIOError):
            reply.recv(65536)
        theirs.sendall(HTTP_OK[20:] + b"220 greeting\r\n")
        assert reply.recv(65536) == HTTP_OK
        plain = reply.release()
        with plain:
            assert type(plain) is socket.socket
            assert plain.gettimeout() == 0.0
            assert plain.recv(65536) == b"220 greeting\r\n"
