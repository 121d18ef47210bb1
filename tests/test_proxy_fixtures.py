"""The proxy fixtures run real proxy servers that tunnel, authenticate and block.

Each test tunnels to a small TCP echo server through a fixture's proxy with
the independent ``python_socks`` client.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest
from python_socks import ProxyError, ProxyType
from python_socks.sync import Proxy

from tests.support.proxies import BLOCKED_HOST, LOOPBACK, RunningProxy, free_port

TIMEOUT = 5.0


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _serve(host: str) -> Iterator[tuple[str, int]]:
    server = _EchoServer((host, 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        address, port = server.server_address[:2]
        yield str(address), int(port)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[str, int]]:
    """An echo server on 127.0.0.1."""
    yield from _serve(LOOPBACK)


@pytest.fixture(scope="module")
def blocked_echo() -> Iterator[tuple[str, int]]:
    """An echo server on BLOCKED_HOST: reachable directly, refused by blocking proxies."""
    yield from _serve(BLOCKED_HOST)


def _roundtrip(proxy: Proxy, host: str, port: int) -> bytes:
    sock = proxy.connect(host, port, timeout=TIMEOUT)
    try:
        sock.settimeout(TIMEOUT)
        payload = b"EHLO through the proxy\r\n"
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        return received
    finally:
        sock.close()


def _assert_tunnels(proxy: Proxy, host: str, port: int) -> None:
    assert _roundtrip(proxy, host, port) == b"EHLO through the proxy\r\n"


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))


def test_running_proxy_url() -> None:
    proxy = RunningProxy("socks4a", LOOPBACK, 1080, None, None)
    assert proxy.url == "socks4://127.0.0.1:1080"
    proxy = RunningProxy("socks5", LOOPBACK, 1080, "u", "p")
    assert proxy.url == "socks5://u:p@127.0.0.1:1080"
    assert proxy.address == (LOOPBACK, 1080)


@pytest.mark.parametrize(
    "fixture",
    [
        "socks5_proxy",
        "socks5_auth_proxy",
        "socks4_proxy",
        "socks4a_proxy",
        "http_proxy",
        "http_auth_proxy",
        "socks5_blocking_proxy",
        "http_blocking_proxy",
    ],
)
def test_proxy_tunnels_to_loopback(
    request: pytest.FixtureRequest, fixture: str, echo: tuple[str, int]
) -> None:
    running: RunningProxy = request.getfixturevalue(fixture)
    assert running.host == LOOPBACK
    assert running.kind in {"socks4", "socks4a", "socks5", "http"}
    # rdns=False: the client sends the IPv4 address itself (plain SOCKS4 for socks4a).
    _assert_tunnels(Proxy.from_url(running.url, rdns=False), *echo)


@pytest.mark.parametrize("fixture", ["socks5_proxy", "socks5_auth_proxy", "socks4a_proxy"])
def test_proxy_resolves_host_names(
    request: pytest.FixtureRequest, fixture: str, echo: tuple[str, int]
) -> None:
    running: RunningProxy = request.getfixturevalue(fixture)
    # SOCKS5 ATYP=domain / SOCKS4a (0.0.0.1 + host name): the proxy resolves it.
    _assert_tunnels(Proxy.from_url(running.url, rdns=True), "localhost", echo[1])


def test_http_proxy_connects_by_host_name(http_proxy: RunningProxy, echo: tuple[str, int]) -> None:
    _assert_tunnels(Proxy.from_url(http_proxy.url), "localhost", echo[1])


def test_dante_socks4_has_no_socks4a(socks4_proxy: RunningProxy, echo: tuple[str, int]) -> None:
    """Documents why socks4a_proxy is not dante: it rejects a 4a request."""
    proxy = Proxy.from_url(socks4_proxy.url, rdns=True)
    with pytest.raises(ProxyError):
        _roundtrip(proxy, "localhost", echo[1])


def test_socks4_and_socks5_proxies_speak_only_their_version(
    socks4_proxy: RunningProxy, socks5_proxy: RunningProxy, echo: tuple[str, int]
) -> None:
    v5_to_v4 = Proxy.create(ProxyType.SOCKS5, socks4_proxy.host, socks4_proxy.port)
    with pytest.raises(ProxyError):
        _roundtrip(v5_to_v4, *echo)
    v4_to_v5 = Proxy.create(ProxyType.SOCKS4, socks5_proxy.host, socks5_proxy.port)
    with pytest.raises(ProxyError):
        _roundtrip(v4_to_v5, *echo)


def test_socks5_auth_proxy_refuses_wrong_password(
    socks5_auth_proxy: RunningProxy, echo: tuple[str, int]
) -> None:
    assert socks5_auth_proxy.username and socks5_auth_proxy.password
    wrong = Proxy.create(
        ProxyType.SOCKS5,
        socks5_auth_proxy.host,
        socks5_auth_proxy.port,
        username=socks5_auth_proxy.username,
        password=socks5_auth_proxy.password + "x",
    )
    with pytest.raises(ProxyError):
        _roundtrip(wrong, *echo)


def test_socks5_auth_proxy_refuses_unknown_user(
    socks5_auth_proxy: RunningProxy, echo: tuple[str, int]
) -> None:
    # root exists on every machine, but only the fixture's user is let through.
    stranger = Proxy.create(
        ProxyType.SOCKS5,
        socks5_auth_proxy.host,
        socks5_auth_proxy.port,
        username="root",
        password=socks5_auth_proxy.password,
    )
    with pytest.raises(ProxyError):
        _roundtrip(stranger, *echo)


def test_socks5_auth_proxy_refuses_no_auth(
    socks5_auth_proxy: RunningProxy, echo: tuple[str, int]
) -> None:
    anonymous = Proxy.create(ProxyType.SOCKS5, socks5_auth_proxy.host, socks5_auth_proxy.port)
    with pytest.raises(ProxyError):
        _roundtrip(anonymous, *echo)


def test_http_auth_proxy_requires_credentials(
    http_auth_proxy: RunningProxy, echo: tuple[str, int]
) -> None:
    anonymous = Proxy.create(ProxyType.HTTP, http_auth_proxy.host, http_auth_proxy.port)
    with pytest.raises(ProxyError, match="407"):
        _roundtrip(anonymous, *echo)
    wrong = Proxy.create(
        ProxyType.HTTP,
        http_auth_proxy.host,
        http_auth_proxy.port,
        username=http_auth_proxy.username,
        password="wrong",
    )
    # tinyproxy answers a wrong password with 401, not 407.
    with pytest.raises(ProxyError, match=r"40[17]"):
        _roundtrip(wrong, *echo)


def test_blocked_host_is_reachable_directly(blocked_echo: tuple[str, int]) -> None:
    with socket.create_connection(blocked_echo, timeout=TIMEOUT) as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"


def test_socks5_blocking_proxy_blocks(
    socks5_blocking_proxy: RunningProxy, blocked_echo: tuple[str, int]
) -> None:
    proxy = Proxy.from_url(socks5_blocking_proxy.url)
    with pytest.raises(ProxyError) as excinfo:
        _roundtrip(proxy, *blocked_echo)
    assert excinfo.value.error_code == 2  # connection not allowed by ruleset


def test_http_blocking_proxy_blocks(
    http_blocking_proxy: RunningProxy, blocked_echo: tuple[str, int]
) -> None:
    proxy = Proxy.from_url(http_blocking_proxy.url)
    with pytest.raises(ProxyError, match="403"):
        _roundtrip(proxy, *blocked_echo)


def test_non_blocking_proxies_reach_blocked_host(
    socks5_proxy: RunningProxy, http_proxy: RunningProxy, blocked_echo: tuple[str, int]
) -> None:
    """127.0.0.2 is only refused by the blocking proxies, not by the network."""
    _assert_tunnels(Proxy.from_url(socks5_proxy.url), *blocked_echo)
    _assert_tunnels(Proxy.from_url(http_proxy.url), *blocked_echo)
