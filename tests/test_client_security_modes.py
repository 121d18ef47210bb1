"""SmtpClient against real servers: every security mode against every kind of server.

Covers ``SecurityOptions`` (NONE, SSL_EXPLICIT, SSL_IMPLICIT, SSL_AUTO, AUTO) against a
plaintext, a STARTTLS and an implicit-TLS aiosmtpd server, fast auto detection (greeting timeout,
the port-465 hint), certificate verification by default, and the refusals that must leave
nothing sent (SECURITY.md item 4).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mailwire import (
    SecurityOptions,
    SmtpClient,
    SmtpError,
    SmtpSecurityError,
    SmtpTimeoutError,
    TlsNotSpokenError,
)
from mailwire.devserver import Certificates, DevServer, TlsMode
from tests.support.scripted import (
    Expect,
    ExpectClose,
    Reply,
    ScriptedServerFactory,
    ehlo_reply,
    greeting,
)

SENDER = "sender@example.com"
RECIPIENT = "rcpt@example.org"
MESSAGE = (
    b"From: sender@example.com\r\n"
    b"To: rcpt@example.org\r\n"
    b"Subject: security modes\r\n"
    b"\r\n"
    b"Hello over some kind of connection.\r\n"
)
GREETING_TIMEOUT = 0.3
Servers = Callable[..., DevServer]


@pytest.fixture
def servers(server_pool: Servers) -> Servers:
    """``servers(**DevServer options)``: one running server per configuration for the module,
    emptied of messages each time it is handed out."""

    def get(**options: Any) -> DevServer:
        return server_pool(**options)

    return get


def server_certificate(certificates: Certificates) -> bytes:
    """The DER form of the server's own certificate (the first in its chain file)."""
    return ssl.PEM_cert_to_DER_cert(certificates.cert_file.read_text())


def client_for(
    server: DevServer, security: SecurityOptions, certificates: Certificates, **options: Any
) -> SmtpClient:
    options.setdefault("greeting_timeout", GREETING_TIMEOUT)
    options.setdefault("timeout", 5.0)
    return SmtpClient(
        "localhost",
        server.port,
        security=security,
        ssl_context=certificates.client_context(),
        **options,
    )


# -- the matrix --------------------------------------------------------------------------------

S = SecurityOptions
SUCCEEDS = {
    (TlsMode.NONE, S.NONE): S.NONE,
    (TlsMode.NONE, S.AUTO): S.NONE,
    (TlsMode.STARTTLS, S.NONE): S.NONE,
    (TlsMode.STARTTLS, S.SSL_EXPLICIT): S.SSL_EXPLICIT,
    (TlsMode.STARTTLS, S.SSL_AUTO): S.SSL_EXPLICIT,
    (TlsMode.STARTTLS, S.AUTO): S.SSL_EXPLICIT,
    (TlsMode.IMPLICIT, S.SSL_IMPLICIT): S.SSL_IMPLICIT,
    (TlsMode.IMPLICIT, S.SSL_AUTO): S.SSL_IMPLICIT,
    (TlsMode.IMPLICIT, S.AUTO): S.SSL_IMPLICIT,
}
FAILS: dict[tuple[TlsMode, SecurityOptions], type[SmtpError]] = {
    (TlsMode.NONE, S.SSL_EXPLICIT): SmtpSecurityError,
    (TlsMode.NONE, S.SSL_IMPLICIT): TlsNotSpokenError,
    (TlsMode.NONE, S.SSL_AUTO): SmtpSecurityError,
    (TlsMode.STARTTLS, S.SSL_IMPLICIT): TlsNotSpokenError,
    # A plaintext mode waiting for a greeting an implicit-TLS server never sends.
    (TlsMode.IMPLICIT, S.NONE): SmtpTimeoutError,
    (TlsMode.IMPLICIT, S.SSL_EXPLICIT): SmtpTimeoutError,
}


def test_the_matrix_is_complete() -> None:
    combinations = {(kind, mode) for kind in TlsMode for mode in SecurityOptions}
    assert set(SUCCEEDS) | set(FAILS) == combinations
    assert not set(SUCCEEDS) & set(FAILS)


@pytest.mark.parametrize(("kind", "mode"), list(SUCCEEDS), ids=lambda v: v.name)
def test_mode_against_server_kind_delivers(
    servers: Servers, certificates: Certificates, kind: TlsMode, mode: SecurityOptions
) -> None:
    server = servers(tls=kind)
    with client_for(server, mode, certificates) as client:
        result = client.send(MESSAGE)
        info = client.connection_info
        assert info is not None
        local_address = info.local_address[:2]

    expected = SUCCEEDS[(kind, mode)]
    (received,) = server.wait_for_messages(1)
    assert received.data == MESSAGE
    assert received.mail_from == SENDER
    assert received.rcpt_tos == (RECIPIENT,)
    assert received.peer == local_address
    assert result.accepted == (RECIPIENT,)
    assert result.reply.code == 250

    assert info.security is expected
    assert info.greeting.code == 220
    assert "ESMTP mailwire devserver" in info.greeting.text
    if expected is S.NONE:
        assert received.tls_version is None
        assert info.tls_version is None
        assert info.cipher is None
        assert info.peer_certificate is None
    else:
        assert received.tls_version is not None
        assert received.tls_version.startswith("TLSv1.")
        assert info.tls_version == received.tls_version
        assert isinstance(info.cipher, str) and info.cipher
        assert info.peer_certificate == server_certificate(certificates)
    # Once TLS is up the capabilities are the ones given over TLS.
    assert ("STARTTLS" in info.capabilities) is (kind is TlsMode.STARTTLS and expected is S.NONE)


@pytest.mark.parametrize(("kind", "mode"), list(FAILS), ids=lambda v: v.name)
def test_mode_against_server_kind_fails_and_sends_nothing(
    servers: Servers, certificates: Certificates, kind: TlsMode, mode: SecurityOptions
) -> None:
    server = servers(tls=kind)
    client = client_for(server, mode, certificates)
    started = time.monotonic()
    with pytest.raises(SmtpError) as caught:
        client.send(MESSAGE)
    elapsed = time.monotonic() - started

    assert type(caught.value) is FAILS[(kind, mode)], repr(caught.value)
    if isinstance(caught.value, SmtpTimeoutError):
        assert caught.value.phase == "greeting"
        assert elapsed < GREETING_TIMEOUT + 1.0
    assert not client.is_connected
    assert client.connection_info is None
    client.quit()
    assert server.messages == []


def test_ssl_explicit_without_starttls_sends_nothing_after_ehlo(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(
        greeting(),
        Expect(b"EHLO"),
        ehlo_reply(["PIPELINING", "AUTH PLAIN LOGIN", "SIZE 100000"]),
        ExpectClose(),
    )
    client = SmtpClient(
        server.host,
        server.port,
        "alice",
        "secret",
        S.SSL_EXPLICIT,
        timeout=5.0,
        allow_plaintext_credentials=True,
    )
    with pytest.raises(SmtpSecurityError, match="STARTTLS"):
        client.send(MESSAGE)
    server.wait()
    sent = b"".join(server.received)
    assert sent.startswith(b"EHLO ")
    for command in (b"AUTH", b"MAIL", b"RCPT", b"DATA"):
        assert command not in sent


@pytest.mark.parametrize("mode", [S.SSL_EXPLICIT, S.SSL_AUTO, S.AUTO], ids=lambda m: m.name)
def test_refused_starttls_never_continues_in_plaintext(
    scripted_server: ScriptedServerFactory, mode: SecurityOptions
) -> None:
    server = scripted_server(
        greeting(),
        Expect(b"EHLO"),
        ehlo_reply(["STARTTLS", "AUTH PLAIN"]),
        Expect(b"STARTTLS"),
        Reply(454, "4.7.0 TLS not available due to temporary reason"),
        ExpectClose(),
        repeat=False,
    )
    client = SmtpClient(
        server.host,
        server.port,
        "alice",
        "secret",
        mode,
        timeout=5.0,
        greeting_timeout=2.0,
        allow_plaintext_credentials=True,
    )
    with pytest.raises(SmtpSecurityError) as caught:
        client.send(MESSAGE)
    assert caught.value.code == 454
    server.wait()
    assert server.connection_count == 1
    sent = b"".join(server.received)
    for command in (b"AUTH", b"MAIL", b"RCPT", b"DATA"):
        assert command not in sent


# -- auto detection ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [S.SSL_AUTO, S.AUTO], ids=lambda m: m.name)
def test_auto_detects_implicit_tls_on_a_non_standard_port_quickly(
    servers: Servers, certificates: Certificates, mode: SecurityOptions
) -> None:
    server = servers(tls=TlsMode.IMPLICIT)
    assert server.port != 465
    started = time.monotonic()
    with client_for(server, mode, certificates, greeting_timeout=0.5, timeout=30.0) as client:
        info = client.connect()
        elapsed = time.monotonic() - started
        client.send(MESSAGE)
    # A behaviour bound, not a benchmark: a wrong guess must not cost the 30 s timeout.
    assert elapsed < 5.0
    assert info.security is S.SSL_IMPLICIT
    assert info.tls_version is not None
    (received,) = server.wait_for_messages(1)
    assert received.tls_version == info.tls_version


@pytest.mark.parametrize("kind", [TlsMode.NONE, TlsMode.STARTTLS], ids=lambda k: k.name)
def test_auto_costs_no_wait_when_the_server_greets_in_plaintext(
    servers: Servers, certificates: Certificates, kind: TlsMode
) -> None:
    server = servers(tls=kind)
    started = time.monotonic()
    with client_for(server, S.AUTO, certificates, greeting_timeout=5.0) as client:
        info = client.connect()
        elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert info.security is (S.NONE if kind is TlsMode.NONE else S.SSL_EXPLICIT)


@pytest.fixture
def port_465_server(certificates: Certificates) -> Iterator[Callable[[TlsMode], DevServer]]:
    started: list[DevServer] = []

    def start(kind: TlsMode) -> DevServer:
        server = DevServer(port=465, tls=kind, certificates=certificates)
        try:
            server.start()
        except OSError as error:
            pytest.skip(f"cannot bind port 465 here: {error}")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_port_465_hint_tries_tls_first(
    port_465_server: Callable[[TlsMode], DevServer], certificates: Certificates
) -> None:
    server = port_465_server(TlsMode.IMPLICIT)
    started = time.monotonic()
    # With greeting_timeout=5, only a client that starts TLS at once connects in < 2 s.
    with SmtpClient(
        "localhost",
        465,
        security=S.AUTO,
        greeting_timeout=5.0,
        timeout=30.0,
        ssl_context=certificates.client_context(),
    ) as client:
        info = client.connect()
        elapsed = time.monotonic() - started
        client.send(MESSAGE)
    assert elapsed < 2.0
    assert info.security is S.SSL_IMPLICIT
    (received,) = server.wait_for_messages(1)
    assert received.tls_version is not None


def test_ssl_implicit_defaults_to_port_465(
    port_465_server: Callable[[TlsMode], DevServer], certificates: Certificates
) -> None:
    server = port_465_server(TlsMode.IMPLICIT)
    client = SmtpClient(
        "localhost", security=S.SSL_IMPLICIT, timeout=5.0, ssl_context=certificates.client_context()
    )
    assert client.effective_port == 465
    with client:
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.tls_version is not None


def test_port_465_with_a_starttls_server_still_gets_tls(
    port_465_server: Callable[[TlsMode], DevServer], certificates: Certificates
) -> None:
    server = port_465_server(TlsMode.STARTTLS)
    with SmtpClient(
        "localhost",
        465,
        security=S.AUTO,
        greeting_timeout=5.0,
        timeout=10.0,
        ssl_context=certificates.client_context(),
    ) as client:
        info = client.connect()
        client.send(MESSAGE)
    assert info.security is S.SSL_EXPLICIT
    (received,) = server.wait_for_messages(1)
    assert received.tls_version is not None


@pytest.mark.parametrize("mode", [S.AUTO, S.SSL_AUTO], ids=lambda m: m.name)
def test_port_465_with_a_plaintext_only_server_is_refused(
    port_465_server: Callable[[TlsMode], DevServer],
    certificates: Certificates,
    mode: SecurityOptions,
) -> None:
    """The TLS attempt on 465 failed, so even AUTO does not settle for plaintext."""
    server = port_465_server(TlsMode.NONE)
    client = SmtpClient(
        "localhost",
        465,
        security=mode,
        greeting_timeout=5.0,
        timeout=10.0,
        ssl_context=certificates.client_context(),
    )
    with pytest.raises(SmtpSecurityError):
        client.send(MESSAGE)
    assert not client.is_connected
    assert server.messages == []


def test_default_ports() -> None:
    assert SmtpClient("localhost", security=S.SSL_IMPLICIT).effective_port == 465
    for mode in (S.NONE, S.SSL_EXPLICIT, S.SSL_AUTO, S.AUTO):
        assert SmtpClient("localhost", security=mode).effective_port == 587
    assert SmtpClient("localhost", 2525, security=S.SSL_IMPLICIT).effective_port == 2525


# -- certificates ------------------------------------------------------------------------------

TLS_PAIRS = [
    (TlsMode.IMPLICIT, S.SSL_IMPLICIT),
    (TlsMode.IMPLICIT, S.SSL_AUTO),
    (TlsMode.IMPLICIT, S.AUTO),
    (TlsMode.STARTTLS, S.SSL_EXPLICIT),
    (TlsMode.STARTTLS, S.SSL_AUTO),
    (TlsMode.STARTTLS, S.AUTO),
]


@pytest.mark.parametrize("bad", ["wrong_host_certificates", "unknown_ca_certificates"])
@pytest.mark.parametrize(("kind", "mode"), TLS_PAIRS, ids=lambda v: v.name)
def test_untrusted_certificate_is_refused_and_nothing_delivered(
    servers: Servers,
    certificates: Certificates,
    request: pytest.FixtureRequest,
    bad: str,
    kind: TlsMode,
    mode: SecurityOptions,
) -> None:
    server = servers(tls=kind, certificates=request.getfixturevalue(bad))
    client = client_for(server, mode, certificates)
    with pytest.raises(SmtpSecurityError) as caught:
        client.send(MESSAGE)
    assert not isinstance(caught.value, TlsNotSpokenError)
    assert "certificate" in str(caught.value)
    assert not client.is_connected
    # No plaintext fallback either: the STARTTLS server would have taken the message.
    assert server.messages == []


@pytest.mark.parametrize(("kind", "mode"), [TLS_PAIRS[0], TLS_PAIRS[3]], ids=lambda v: v.name)
def test_certificates_are_verified_by_default(
    servers: Servers, certificates: Certificates, kind: TlsMode, mode: SecurityOptions
) -> None:
    server = servers(tls=kind)
    client = SmtpClient("localhost", server.port, security=mode, timeout=5.0)
    with pytest.raises(SmtpSecurityError, match="certificate"):
        client.send(MESSAGE)
    assert server.messages == []

    # The same server, with the test CA trusted through ca_file, is fine.
    client.ca_file = str(certificates.ca_file)
    with client:
        client.send(MESSAGE)
    assert len(server.wait_for_messages(1)) == 1


def test_host_name_is_checked_against_the_ip_address_too(
    servers: Servers, certificates: Certificates, wrong_host_certificates: Certificates
) -> None:
    server = servers(tls=TlsMode.IMPLICIT, certificates=wrong_host_certificates)
    client = SmtpClient(
        "127.0.0.1",
        server.port,
        security=S.SSL_IMPLICIT,
        timeout=5.0,
        ssl_context=certificates.client_context(),
    )
    with pytest.raises(SmtpSecurityError, match="certificate"):
        client.connect()
