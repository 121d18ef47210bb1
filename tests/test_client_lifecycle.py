"""SmtpClient's connection life: connect on demand, connect(), noop(), capabilities, quit(),
close(), the context manager, connection_info, and attribute changes between connections."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mailwire import (
    Capabilities,
    ConnectionInfo,
    SecurityOptions,
    SmtpClient,
    SmtpKnownAuthenticationType,
    SmtpUsageError,
)
from mailwire.devserver import Certificates, DevServer, TlsMode
from tests.support.scripted import (
    Expect,
    ExpectClose,
    Reply,
    ScriptedServerFactory,
    goodbye,
    handshake,
)

MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: life\r\n\r\nbody\r\n"
USER, PASSWORD = "alice", "correct horse"
Servers = Callable[..., DevServer]


@pytest.fixture(scope="module")
def servers(certificates: Certificates) -> Iterator[Servers]:
    """``servers(name, **DevServer options)``: named servers that live for the module, emptied of
    messages each time one is handed out."""
    running: dict[str, DevServer] = {}

    def get(name: str = "plain", **options: Any) -> DevServer:
        if name not in running:
            options.setdefault("certificates", certificates)
            running[name] = DevServer(**options)
            running[name].start()
        server = running[name]
        server.clear()
        return server

    yield get
    for server in running.values():
        server.stop()


def plain_client(server: Any, **options: Any) -> SmtpClient:
    options.setdefault("timeout", 5.0)
    return SmtpClient(server.host, server.port, security=SecurityOptions.NONE, **options)


def local_port(client: SmtpClient) -> int:
    info = client.connection_info
    assert info is not None
    return int(info.local_address[1])


# -- QUIT and close ----------------------------------------------------------------------------


def test_context_manager_sends_quit(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(*handshake([]), *goodbye())
    with plain_client(server) as client:
        client.connect()
        assert client.is_connected
    assert not client.is_connected
    assert client.connection_info is None
    server.wait()
    assert server.connections[0].completed
    assert server.received[-1] == b"QUIT\r\n"


def test_context_manager_sends_quit_when_the_block_raises(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(*handshake([]), *goodbye())
    with pytest.raises(RuntimeError, match="caller's own error"), plain_client(server) as client:
        client.connect()
        raise RuntimeError("caller's own error")
    server.wait()
    assert server.received[-1] == b"QUIT\r\n"


def test_context_manager_without_any_operation_does_not_connect(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(*handshake([]), *goodbye())
    with plain_client(server) as client:
        assert not client.is_connected
    # Connecting now proves the first connection the server accepts is this one.
    probe = plain_client(server)
    probe.connect()
    probe.quit()
    server.wait(connections=1)
    assert server.connection_count == 1


def test_quit_twice_and_quit_before_connecting_are_harmless(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(*handshake([]), *goodbye(), repeat=False)
    client = plain_client(server)
    client.quit()
    client.connect()
    client.quit()
    client.quit()
    client.close()
    assert not client.is_connected
    server.wait()
    assert [chunk for chunk in server.received if chunk.startswith(b"QUIT")] == [b"QUIT\r\n"]


def test_close_drops_the_connection_without_quit(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(*handshake([]), ExpectClose())
    client = plain_client(server)
    client.connect()
    client.close()
    assert not client.is_connected
    server.wait()
    assert all(not chunk.startswith(b"QUIT") for chunk in server.received)


# -- connect, noop, capabilities, connection_info ----------------------------------------------


def test_connect_returns_connection_info(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        assert client.connection_info is None
        info = client.connect()
        assert isinstance(info, ConnectionInfo)
        assert client.connection_info == info
        assert info.security is SecurityOptions.NONE
        assert info.greeting.code == 220
        assert info.remote_address[:2] == ("127.0.0.1", server.port)
        assert info.auth_mechanism is None
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.peer == info.local_address[:2]
    assert received.helo_name == "[127.0.0.1]"  # an address literal: valid without DNS


def test_connect_again_makes_a_new_connection(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        client.connect()
        first = local_port(client)
        client.connect()
        second = local_port(client)
        client.send(MESSAGE)
    assert first != second
    (received,) = server.wait_for_messages(1)
    assert received.peer[1] == second


def test_connect_authenticates_when_credentials_are_set(
    servers: Servers, certificates: Certificates
) -> None:
    server = servers(
        "auth", tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD}, mechanisms=("PLAIN",)
    )
    with SmtpClient(
        "localhost",
        server.port,
        USER,
        PASSWORD,
        SecurityOptions.SSL_IMPLICIT,
        timeout=5.0,
        ssl_context=certificates.client_context(),
    ) as client:
        info = client.connect()
        assert info.auth_mechanism == "PLAIN"
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.auth_mechanism == "PLAIN"


def test_noop_connects_on_demand_and_reuses(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        assert not client.is_connected
        reply = client.noop()
        assert reply.code == 250
        assert client.is_connected
        port = local_port(client)
        assert client.noop().code == 250
        client.send(MESSAGE)
        assert local_port(client) == port
    (received,) = server.wait_for_messages(1)
    assert received.peer[1] == port


def test_capabilities_connects_on_demand(servers: Servers) -> None:
    server = servers("limits", data_size_limit=12345, pipelining=False, smtputf8=False)
    with plain_client(server) as client:
        capabilities = client.capabilities
        assert isinstance(capabilities, Capabilities)
        assert client.is_connected
        assert capabilities.size == 12345
        assert capabilities.eightbitmime
        assert not capabilities.pipelining
        assert not capabilities.smtputf8
        assert not capabilities.starttls
        assert "HELP" in capabilities


def test_capabilities_of_the_default_server(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        capabilities = client.capabilities
    assert capabilities.pipelining and capabilities.smtputf8 and capabilities.eightbitmime
    assert capabilities.size == 32 * 1024 * 1024


def test_send_after_quit_reconnects(servers: Servers) -> None:
    server = servers()
    client = plain_client(server)
    client.send(MESSAGE)
    first = local_port(client)
    client.quit()
    client.send(MESSAGE)
    second = local_port(client)
    client.quit()
    one, two = server.wait_for_messages(2)
    assert (one.peer[1], two.peer[1]) == (first, second)
    assert first != second


def test_repr(servers: Servers) -> None:
    server = servers()
    client = plain_client(server, username=USER, password=PASSWORD)
    assert repr(client) == (f"<SmtpClient 127.0.0.1:{server.port} NONE user='alice' not connected>")
    client.username = None
    client.connect()
    assert "connected>" in repr(client) and "not connected" not in repr(client)
    client.quit()


# -- settings take effect on the next connection -----------------------------------------------


def test_changing_host_and_port(servers: Servers) -> None:
    first, second = servers(), servers("other")
    with plain_client(first) as client:
        client.send(MESSAGE)
        client.host = "localhost"
        client.port = second.port
        client.send(MESSAGE)  # still the current connection
        client.quit()
        client.send(MESSAGE)  # the next connection goes to the new address
    assert len(first.wait_for_messages(2)) == 2
    assert len(second.wait_for_messages(1)) == 1
    assert len(first.messages) == 2


def test_changing_security(servers: Servers, certificates: Certificates) -> None:
    server = servers("starttls", tls=TlsMode.STARTTLS)
    client = SmtpClient(
        "localhost",
        server.port,
        security="none",
        timeout=5.0,
        ssl_context=certificates.client_context(),
    )
    with client:
        client.send(MESSAGE)
    client.security = "starttls"
    assert client.security is SecurityOptions.SSL_EXPLICIT
    with client:
        client.send(MESSAGE)
        info = client.connection_info
        assert info is not None and info.security is SecurityOptions.SSL_EXPLICIT
    plaintext, encrypted = server.wait_for_messages(2)
    assert plaintext.tls_version is None
    assert encrypted.tls_version is not None


def test_an_unknown_security_mode_is_a_usage_error() -> None:
    client = SmtpClient("localhost")
    with pytest.raises(SmtpUsageError, match="security mode"):
        client.security = "sometimes"
    assert client.security is SecurityOptions.AUTO
    with pytest.raises(SmtpUsageError):
        SmtpClient("localhost", security="tls-please")


def test_changing_credentials_and_allowed_mechanisms(
    servers: Servers, certificates: Certificates
) -> None:
    server = servers(
        "auth-all", tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD, "bob": "bobs secret"}
    )
    client = SmtpClient(
        "localhost",
        server.port,
        USER,
        PASSWORD,
        SecurityOptions.SSL_IMPLICIT,
        timeout=5.0,
        ssl_context=certificates.client_context(),
    )
    client.allowed_authentication = SmtpKnownAuthenticationType.CRAM_MD5
    with client:
        client.send(MESSAGE)
    client.allowed_authentication = SmtpKnownAuthenticationType.LOGIN
    client.username, client.password = "bob", "bobs secret"
    with client:
        client.send(MESSAGE)
    first, second = server.wait_for_messages(2)
    assert (first.auth_mechanism, first.auth_user) == ("CRAM-MD5", USER)
    assert (second.auth_mechanism, second.auth_user) == ("LOGIN", "bob")


def test_changing_local_hostname(servers: Servers) -> None:
    server = servers()
    client = plain_client(server, local_hostname="client.example.net")
    with client:
        client.send(MESSAGE)
    client.local_hostname = "other.example.net"
    with client:
        client.send(MESSAGE)
    first, second = server.wait_for_messages(2)
    assert (first.helo_name, second.helo_name) == ("client.example.net", "other.example.net")


def test_a_change_does_not_disturb_the_current_connection(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(
        *handshake([]), Expect(b"NOOP"), Reply(250, "ok"), *goodbye(), repeat=False
    )
    with plain_client(server) as client:
        client.connect()
        client.local_hostname = "changed.example.net"
        client.greeting_timeout = 0.01
        assert client.noop().code == 250
    server.wait()
    assert server.connection_count == 1
