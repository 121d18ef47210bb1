"""Both clients through real proxies (dante, tinyproxy, OpenSSH ``ssh -D``) to a real server.

Every proxy kind (SOCKS4, SOCKS4a, SOCKS5, SOCKS5 with username/password, HTTP CONNECT, HTTP
CONNECT with Basic credentials) against a plaintext, a STARTTLS and an implicit-TLS aiosmtpd
server; proxies given as objects and as URLs; automatic mode detection through a proxy. The
client connects to the name ``localhost``, which is not the proxy's name (127.0.0.1), and the
server records the SNI it was asked for, so TLS is shown to verify the SMTP server's
certificate under the SMTP host's name. Every test that connects runs against ``SmtpClient``
and ``AsyncSmtpClient`` (the ``make_client`` fixture).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest

from mailwire import (
    HttpProxy,
    ProxyError,
    SecurityOptions,
    SmtpClient,
    SmtpSecurityError,
    SocksProxy,
    SocksVersion,
)
from mailwire.devserver import Certificates, DevServer, TlsMode
from mailwire.message import simple_message
from mailwire.results import SendResult
from tests.support.clients import Client, ClientFactory
from tests.support.proxies import RunningProxy

SENDER = "sender@example.com"
RECIPIENT = "rcpt@example.org"
TIMEOUT = 5.0
StartServer = Callable[..., DevServer]

PROXIES = [
    "socks4_proxy",
    "socks4a_proxy",
    "socks5_proxy",
    "socks5_auth_proxy",
    "http_proxy",
    "http_auth_proxy",
]
MODES = {
    TlsMode.NONE: SecurityOptions.NONE,
    TlsMode.STARTTLS: SecurityOptions.SSL_EXPLICIT,
    TlsMode.IMPLICIT: SecurityOptions.SSL_IMPLICIT,
}


def proxy_object(running: RunningProxy) -> SocksProxy | HttpProxy:
    if running.kind == "http":
        return HttpProxy(running.host, running.port, running.username, running.password)
    version = {"socks4": SocksVersion.SOCKS4, "socks4a": SocksVersion.SOCKS4A,
               "socks5": SocksVersion.SOCKS5}[running.kind]
    return SocksProxy(running.host, running.port, version, running.username, running.password)


class SniServer:
    """A DevServer whose TLS context records every SNI name a client asks for."""

    def __init__(self, start: StartServer, certificates: Certificates, tls: TlsMode,
                 **options: Any) -> None:
        self.names: list[str | None] = []
        context = certificates.server_context()
        context.sni_callback = self._record
        self.server = start(tls=tls, ssl_context=context, **options)

    def _record(self, _connection: ssl.SSLObject, name: str | None,
                _context: ssl.SSLContext) -> None:
        self.names.append(name)


def client_for(make_client: ClientFactory, server: DevServer, certificates: Certificates,
               proxy: Any, security: SecurityOptions, **options: Any) -> Client:
    return make_client("localhost", server.port, security=security, proxy=proxy,
                       ca_file=str(certificates.ca_file), timeout=TIMEOUT, **options)


def send_mail(client: Client, subject: str, body: str = "through a proxy") -> SendResult:
    """``send_mail`` of either client (the blocking face of the async one has only ``send``)."""
    return client.send(simple_message(SENDER, RECIPIENT, subject, body, None))


def send_one(client: Client, subject: str) -> None:
    with client:
        result = send_mail(client, subject)
    assert result.accepted == (RECIPIENT,)


@pytest.mark.parametrize("tls", list(MODES), ids=lambda mode: mode.value)
@pytest.mark.parametrize("fixture", PROXIES)
def test_every_proxy_kind_in_every_tls_mode(
    request: pytest.FixtureRequest, fixture: str, tls: TlsMode, make_client: ClientFactory,
    smtp_server: StartServer, certificates: Certificates,
) -> None:
    running: RunningProxy = request.getfixturevalue(fixture)
    sni = SniServer(smtp_server, certificates, tls)
    client = client_for(make_client, sni.server, certificates, proxy_object(running), MODES[tls])

    with client:
        info = client.connect()
        # The client's socket goes to the proxy, not to the server.
        assert info.remote_address[:2] == (running.host, running.port)
        local = info.local_address[:2]
        send_mail(client, f"via {fixture}")

    [message] = sni.server.wait_for_messages(1)
    assert message.rcpt_tos == (RECIPIENT,)
    assert b"Subject: via " + fixture.encode() in message.data
    # The server was reached by the proxy, from another socket than the client's.
    assert message.peer != local
    if tls is TlsMode.NONE:
        assert info.tls_version is None and message.tls_version is None
        assert sni.names == []
    else:
        assert info.tls_version == message.tls_version and message.tls_version
        assert info.cipher
        # SNI and the verified name are the SMTP host, not the proxy's 127.0.0.1.
        assert sni.names == ["localhost"]
    assert info.security is MODES[tls]


@pytest.mark.parametrize(
    ("fixture", "scheme"),
    [
        ("socks4_proxy", "socks4"),
        ("socks4a_proxy", "socks4a"),
        ("socks4a_proxy", "socks4"),
        ("socks5_proxy", "socks5"),
        ("socks5_proxy", "socks5h"),
        ("socks5_auth_proxy", "socks5h"),
        ("socks5_auth_proxy", "socks5"),
        ("http_proxy", "http"),
        ("http_auth_proxy", "http"),
    ],
)
def test_proxy_urls(
    request: pytest.FixtureRequest, fixture: str, scheme: str, make_client: ClientFactory,
    smtp_server: StartServer, certificates: Certificates,
) -> None:
    running: RunningProxy = request.getfixturevalue(fixture)
    userinfo = f"{running.username}:{running.password}@" if running.username else ""
    url = f"{scheme}://{userinfo}{running.host}:{running.port}"
    sni = SniServer(smtp_server, certificates, TlsMode.STARTTLS)
    client = client_for(make_client, sni.server, certificates, url,
                        SecurityOptions.SSL_EXPLICIT)
    assert isinstance(client.proxy, HttpProxy if scheme == "http" else SocksProxy)
    assert client.proxy.username == running.username
    assert client.proxy.password == running.password

    send_one(client, f"url {scheme}")

    assert sni.server.wait_for_messages(1)[0].tls_version
    assert sni.names == ["localhost"]


def test_url_schemes_choose_version_and_name_resolution() -> None:
    def parsed(url: str) -> SocksProxy:
        proxy = SmtpClient("localhost", proxy=url).proxy
        assert isinstance(proxy, SocksProxy)
        return proxy

    assert parsed("socks4://h:1").version is SocksVersion.SOCKS4
    assert not parsed("socks4://h:1").resolves_remotely
    assert parsed("SOCKS4A://h:1").version is SocksVersion.SOCKS4A
    assert parsed("socks4a://h:1").resolves_remotely
    assert not parsed("socks5://h:1").resolves_remotely  # as curl: socks5 resolves locally
    assert parsed("socks5h://h:1").resolves_remotely
    assert parsed("socks5h://h").port == 1080
    http = SmtpClient("localhost", proxy="http://u:p%40ss@h").proxy
    assert http == HttpProxy("h", 8080, "u", "p@ss")
    assert SocksProxy("h").resolves_remotely  # an object: remote DNS by default


def test_socks4a_sends_the_name_for_the_proxy_to_resolve(
    socks4_proxy: RunningProxy, make_client: ClientFactory, smtp_server: StartServer,
    certificates: Certificates,
) -> None:
    """dante speaks SOCKS4 but not 4a: a SOCKS4A request (a name, not an address) is refused
    there while plain SOCKS4 (resolved here) gets through, so SOCKS4A did send the name."""
    server = smtp_server()
    refused = client_for(make_client, server, certificates, f"socks4a://{socks4_proxy.host}:"
                         f"{socks4_proxy.port}", SecurityOptions.NONE)
    with pytest.raises(ProxyError) as caught:
        refused.connect()
    assert caught.value.proxy_code == 0x5B
    send_one(client_for(make_client, server, certificates, socks4_proxy.url,
                        SecurityOptions.NONE), "4")
    assert len(server.wait_for_messages(1)) == 1


@pytest.mark.parametrize(
    ("fixture", "security"),
    [
        ("socks5_proxy", SecurityOptions.AUTO),
        ("http_proxy", SecurityOptions.AUTO),
        ("socks4a_proxy", SecurityOptions.SSL_AUTO),
    ],
)
def test_auto_detects_implicit_tls_through_a_proxy(
    request: pytest.FixtureRequest, fixture: str, security: SecurityOptions,
    make_client: ClientFactory, smtp_server: StartServer, certificates: Certificates,
) -> None:
    running: RunningProxy = request.getfixturevalue(fixture)
    sni = SniServer(smtp_server, certificates, TlsMode.IMPLICIT)
    client = client_for(make_client, sni.server, certificates, proxy_object(running), security,
                        greeting_timeout=0.5)
    with client:
        info = client.connect()
        send_mail(client, "auto", "detected through a proxy")
    assert info.security is SecurityOptions.SSL_IMPLICIT
    assert sni.server.wait_for_messages(1)[0].tls_version == info.tls_version
    assert sni.names == ["localhost"]


@pytest.mark.parametrize(
    ("tls", "expected"),
    [(TlsMode.STARTTLS, SecurityOptions.SSL_EXPLICIT), (TlsMode.NONE, SecurityOptions.NONE)],
)
def test_auto_detects_starttls_and_plaintext_through_a_proxy(
    http_proxy: RunningProxy, tls: TlsMode, expected: SecurityOptions,
    make_client: ClientFactory, smtp_server: StartServer, certificates: Certificates,
) -> None:
    sni = SniServer(smtp_server, certificates, tls)
    client = client_for(make_client, sni.server, certificates, http_proxy.url,
                        SecurityOptions.AUTO, greeting_timeout=2.0)
    with client:
        assert client.connect().security is expected
        send_mail(client, "auto", "detected through a proxy")
    assert len(sni.server.wait_for_messages(1)) == 1


@pytest.mark.parametrize("fixture", ["socks5_proxy", "http_proxy"])
@pytest.mark.parametrize("tls", [TlsMode.STARTTLS, TlsMode.IMPLICIT], ids=lambda m: m.value)
def test_certificate_name_is_checked_through_a_proxy(
    request: pytest.FixtureRequest, fixture: str, tls: TlsMode, make_client: ClientFactory,
    smtp_server: StartServer, certificates: Certificates,
    wrong_host_certificates: Certificates,
) -> None:
    """A certificate for another name fails although the proxy connection is fine."""
    running: RunningProxy = request.getfixturevalue(fixture)
    server = smtp_server(tls=tls, certificates=wrong_host_certificates)
    client = client_for(make_client, server, certificates, running.url, MODES[tls])
    with pytest.raises(SmtpSecurityError, match=r"localhost|certificate"):
        send_mail(client, "never", "sent")
    assert server.messages == []
