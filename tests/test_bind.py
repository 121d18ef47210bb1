"""``bind_endpoint``: the local address of the outgoing socket, shown from the server's side.

Loopback accepts connections from any 127/8 source, so a server on 127.0.0.1 sees which of
127.0.0.2 and 127.0.0.3 the client bound. 192.0.2.1 (TEST-NET-1) is on no machine: binding
it fails before any packet is sent. Every test runs against ``SmtpClient`` and
``AsyncSmtpClient`` (the ``make_client`` fixture).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mailwire import (
    ProxyError,
    SecurityOptions,
    SmtpConnectionError,
    SmtpTimeoutError,
    SmtpUsageError,
    SocksProxy,
)
from mailwire.devserver import DevServer
from mailwire.message import simple_message
from mailwire.results import SendResult
from tests.support.clients import Client, ClientFactory
from tests.support.proxies import LOOPBACK, RunningProxy, free_port

SENDER = "sender@example.com"
RECIPIENT = "rcpt@example.org"
NOT_HERE = "192.0.2.1"
StartServer = Callable[..., DevServer]
Plain = Callable[..., Client]


@pytest.fixture
def plain(make_client: ClientFactory) -> Plain:
    """``plain(host, port, **options)``: a plaintext client, sync or async."""

    def make(host: str, port: int, **options: Any) -> Client:
        options.setdefault("timeout", 5.0)
        return make_client(host, port, security=SecurityOptions.NONE, **options)

    return make


def send_mail(client: Client) -> SendResult:
    """``send_mail`` of either client (the blocking face of the async one has only ``send``)."""
    return client.send(simple_message(SENDER, RECIPIENT, "bound", "from a chosen address", None))


def send_one(client: Client) -> None:
    with client:
        send_mail(client)


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("source", ["127.0.0.2", "127.0.0.3"])
@pytest.mark.parametrize("listen", ["127.0.0.1", "0.0.0.0"])
def test_server_sees_the_bound_address(
    source: str, listen: str, smtp_server: StartServer, plain: Plain,
) -> None:
    server = smtp_server(host=listen)
    client = plain(LOOPBACK, server.port, bind_endpoint=(source, 0))
    with client:
        info = client.connect()
        send_mail(client)
    [message] = server.wait_for_messages(1)
    assert message.peer[0] == source
    assert info.local_address[0] == source
    assert message.peer[1] == info.local_address[1]


def test_bound_port_is_used(smtp_server: StartServer, plain: Plain) -> None:
    server = smtp_server()
    port = free_port("127.0.0.2")
    send_one(plain(LOOPBACK, server.port, bind_endpoint=("127.0.0.2", port)))
    assert server.wait_for_messages(1)[0].peer == ("127.0.0.2", port)


def test_each_connection_binds_again(smtp_server: StartServer, plain: Plain) -> None:
    """Changing the attribute takes effect on the next connection."""
    server = smtp_server()
    client = plain(LOOPBACK, server.port, bind_endpoint=("127.0.0.2", 0))
    send_one(client)
    client.bind_endpoint = ("127.0.0.3", 0)
    send_one(client)
    client.bind_endpoint = None
    send_one(client)
    peers = [message.peer[0] for message in server.wait_for_messages(3)]
    assert peers == ["127.0.0.2", "127.0.0.3", "127.0.0.1"]


def test_callable_receives_the_server_and_its_answer_is_used(
    smtp_server: StartServer, plain: Plain,
) -> None:
    server = smtp_server()
    asked: list[tuple[str, int]] = []

    def choose(remote: tuple[str, int]) -> tuple[str, int]:
        asked.append(remote)
        return ("127.0.0.3", 0)

    send_one(plain(LOOPBACK, server.port, bind_endpoint=choose))
    assert asked == [(LOOPBACK, server.port)]
    assert server.wait_for_messages(1)[0].peer[0] == "127.0.0.3"


def test_callable_receives_the_proxy_when_there_is_one(
    socks5_proxy: RunningProxy, smtp_server: StartServer, plain: Plain,
) -> None:
    server = smtp_server()
    asked: list[tuple[str, int]] = []

    def choose(remote: tuple[str, int]) -> tuple[str, int]:
        asked.append(remote)
        return ("127.0.0.3", 0)

    client = plain("localhost", server.port, proxy=socks5_proxy.url, bind_endpoint=choose)
    with client:
        info = client.connect()
        send_mail(client)
    assert asked == [socks5_proxy.address]
    # The socket to the proxy is the bound one; the server is reached by the proxy.
    assert info.local_address[0] == "127.0.0.3"
    assert info.remote_address[:2] == socks5_proxy.address
    assert len(server.wait_for_messages(1)) == 1


@pytest.fixture
def recording_listener() -> Iterator[tuple[socket.socket, int]]:
    with socket.create_server((LOOPBACK, 0)) as listener:
        listener.settimeout(5)
        yield listener, listener.getsockname()[1]


def test_proxy_sees_the_bound_address(
    recording_listener: tuple[socket.socket, int], plain: Plain,
) -> None:
    """With a proxy, the bind applies to the connection to the proxy: a listener standing in
    for the proxy sees where it came from (and then never answers)."""
    listener, port = recording_listener
    client = plain("localhost", 25, timeout=0.3, proxy=SocksProxy(LOOPBACK, port),
                   bind_endpoint=("127.0.0.2", 0))
    with pytest.raises(SmtpTimeoutError, match="proxy handshake"):
        client.connect()
    accepted, peer = listener.accept()
    accepted.close()
    assert peer[0] == "127.0.0.2"


@pytest.mark.parametrize("proxied", [False, True], ids=["direct", "proxy"])
def test_address_not_on_this_machine(proxied: bool, smtp_server: StartServer, plain: Plain) -> None:
    server = smtp_server()
    options: dict[str, Any] = {"bind_endpoint": (NOT_HERE, 0)}
    if proxied:
        options["proxy"] = SocksProxy(LOOPBACK, free_port())
    client = plain(LOOPBACK, server.port, **options)
    with pytest.raises(SmtpConnectionError) as caught:
        client.connect()
    # A local problem: not reported as the proxy's.
    assert not isinstance(caught.value, ProxyError)
    assert f"cannot bind the local address {NOT_HERE}:0" in str(caught.value)
    assert "assign" in str(caught.value)  # EADDRNOTAVAIL: cannot assign requested address


def test_port_in_use(smtp_server: StartServer, plain: Plain) -> None:
    server = smtp_server()
    with socket.create_server(("127.0.0.2", 0)) as taken:
        port = taken.getsockname()[1]
        client = plain(LOOPBACK, server.port, bind_endpoint=("127.0.0.2", port))
        with pytest.raises(SmtpConnectionError, match=f"127.0.0.2:{port}: address already"):
            client.connect()


def test_ipv6_address_for_an_ipv4_server(smtp_server: StartServer, plain: Plain) -> None:
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    server = smtp_server()
    client = plain(LOOPBACK, server.port, bind_endpoint=("::1", 0))
    with pytest.raises(SmtpConnectionError) as caught:
        client.connect()
    assert "cannot bind the local address [::1]:0" in str(caught.value)
    assert f"the server {LOOPBACK}:{server.port}" in str(caught.value)


def test_ipv6(smtp_server: StartServer, plain: Plain) -> None:
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    server = smtp_server(host="::1")
    port = free_port_v6()
    send_one(plain("::1", server.port, bind_endpoint=("::1", port)))
    peer = server.wait_for_messages(1)[0].peer
    assert peer == ("::1", port)


def test_name_with_both_families_uses_the_bound_one(smtp_server: StartServer, plain: Plain) -> None:
    """``localhost`` may resolve to ::1 first; binding 127.0.0.2 still reaches the IPv4
    server instead of failing on the IPv6 address."""
    server = smtp_server()
    send_one(plain("localhost", server.port, bind_endpoint=("127.0.0.2", 0)))
    assert server.wait_for_messages(1)[0].peer[0] == "127.0.0.2"


def free_port_v6() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind(("::1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    "value",
    ["127.0.0.2", ("127.0.0.2",), ("127.0.0.2", "25"), ("127.0.0.2", 70000), (2130706434, 0)],
)
def test_malformed_local_address(value: Any, smtp_server: StartServer, plain: Plain) -> None:
    server = smtp_server()
    client = plain(LOOPBACK, server.port, bind_endpoint=value)
    with pytest.raises(SmtpUsageError, match="local address"):
        client.connect()
