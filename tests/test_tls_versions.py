"""TLS protocol versions: ``supported_encryption`` and ``set_supported_encryption_unsafe``.

Servers limited to given versions (aiosmtpd with its own SSLContext) show what the client
negotiates; a runtime without TLS 1.0 or 1.3 is simulated by clearing the ``ssl.HAS_TLSv*``
flags that ``runtime_protocols()`` reads. OpenSSL 3 still speaks TLS 1.0 and 1.1, but only at
security level 0, which the client sets when asked for them; the legacy servers here set it too.
Every test that connects runs against ``SmtpClient`` and ``AsyncSmtpClient`` (``make_client``).
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from mailwire import (
    EncryptionProtocols,
    SecurityOptions,
    SmtpSecurityError,
    SmtpTimeoutError,
    SmtpUsageError,
    TlsNotSpokenError,
)
from mailwire.devserver import Certificates, DevServer, TlsMode
from mailwire.message import simple_message
from mailwire.results import SendResult
from mailwire.transport import tls as tls_module
from mailwire.transport.errors import translate
from mailwire.transport.tls import TlsSettings, runtime_protocols
from tests.support.clients import Client, ClientFactory
from tests.support.scripted import ScriptedServerFactory, StallHandshake, StartTls

P = EncryptionProtocols
V = ssl.TLSVersion
SENDER = "sender@example.com"
RECIPIENT = "rcpt@example.org"
StartServer = Callable[..., DevServer]
ClientFor = Callable[[DevServer], Client]
MODES = {TlsMode.STARTTLS: SecurityOptions.SSL_EXPLICIT,
         TlsMode.IMPLICIT: SecurityOptions.SSL_IMPLICIT}

pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning",
                                        "ignore:ssl.OP_NO_:DeprecationWarning")


def server_context(certificates: Certificates, low: V, high: V) -> ssl.SSLContext:
    context = certificates.server_context(minimum_version=low, maximum_version=high)
    if low < V.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


@pytest.fixture
def versions_server(
    smtp_server: StartServer, certificates: Certificates,
) -> Callable[..., DevServer]:
    def start(low: V, high: V, tls: TlsMode = TlsMode.STARTTLS) -> DevServer:
        return smtp_server(tls=tls, ssl_context=server_context(certificates, low, high))

    return start


@pytest.fixture
def client_for(make_client: ClientFactory, certificates: Certificates) -> ClientFor:
    """``client_for(server)``: a client (sync or async) that trusts the session CA."""

    def make(server: DevServer) -> Client:
        return make_client("localhost", server.port, security=MODES[server.tls],
                           ca_file=str(certificates.ca_file), timeout=5.0)

    return make


def send_mail(client: Client, subject: str, body: str) -> SendResult:
    """``send_mail`` of either client (the blocking face of the async one has only ``send``)."""
    return client.send(simple_message(SENDER, RECIPIENT, subject, body, None))


def negotiated(client: Client, server: DevServer) -> str | None:
    with client:
        info = client.connect()
        send_mail(client, "versions", "negotiated")
    message = server.wait_for_messages(1)[0]
    assert message.tls_version == info.tls_version
    assert info.cipher
    return info.tls_version


@pytest.fixture
def no_tls10(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime that cannot do TLS 1.0."""
    monkeypatch.setattr(ssl, "HAS_TLSv1", False)
    assert not runtime_protocols() & P.TLS10


# -- restricting versions ----------------------------------------------------------------------


@pytest.mark.parametrize("tls", list(MODES), ids=lambda mode: mode.value)
def test_tls13_only_client_against_tls12_server(
    tls: TlsMode, versions_server: Callable[..., DevServer], client_for: ClientFor,
) -> None:
    server = versions_server(V.TLSv1_2, V.TLSv1_2, tls)
    client = client_for(server)
    client.supported_encryption = P.TLS13
    assert client.supported_encryption == P.TLS13
    with pytest.raises(SmtpSecurityError) as caught:
        send_mail(client, "never", "sent")
    # The server speaks TLS, just not 1.3: no "is this a plaintext port?" confusion.
    assert not isinstance(caught.value, TlsNotSpokenError)
    # aiosmtpd (asyncio) drops the connection without sending its alert.
    assert "during the TLS handshake" in str(caught.value)
    assert "(TLS13)" in str(caught.value)
    assert server.messages == []


def test_tls13_only_client_against_a_tls12_server_that_sends_its_alert(
    make_client: ClientFactory, scripted_server: ScriptedServerFactory,
    certificates: Certificates,
) -> None:
    """An OpenSSL server answers with a protocol_version alert, which the error names."""
    context = certificates.server_context(maximum_version=V.TLSv1_2)
    server = scripted_server(StartTls(), ssl_context=context, allow_errors=True)
    client = make_client("localhost", server.port, security="ssl_implicit", timeout=5.0,
                         ca_file=str(certificates.ca_file),
                         supported_encryption=P.TLS13)
    with pytest.raises(SmtpSecurityError) as caught:
        client.connect()
    assert not isinstance(caught.value, TlsNotSpokenError)
    assert "no TLS protocol version that both sides allow" in str(caught.value)
    assert "TLSV1_ALERT_PROTOCOL_VERSION" in str(caught.value)
    assert "offered: TLS13" in str(caught.value)
    server.wait()
    assert any("UNSUPPORTED_PROTOCOL" in error for error in server.errors)


@pytest.mark.parametrize("tls", list(MODES), ids=lambda mode: mode.value)
def test_tls13_server_negotiates_tls13(
    tls: TlsMode, versions_server: Callable[..., DevServer], client_for: ClientFor,
) -> None:
    server = versions_server(V.TLSv1_3, V.TLSv1_3, tls)
    client = client_for(server)
    client.supported_encryption = P.TLS13
    assert negotiated(client, server) == "TLSv1.3"


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (P.NONE, "TLSv1.3"),
        (P.TLS12, "TLSv1.2"),
        (P.TLS12 | P.TLS13, "TLSv1.3"),
        (P.TLS13, "TLSv1.3"),
    ],
)
def test_client_restriction_decides_against_a_flexible_server(
    wanted: EncryptionProtocols, expected: str,
    versions_server: Callable[..., DevServer], client_for: ClientFor,
) -> None:
    server = versions_server(V.TLSv1_2, V.TLSv1_3)
    client = client_for(server)
    client.supported_encryption = wanted
    assert negotiated(client, server) == expected


# -- what the runtime cannot do ----------------------------------------------------------------


@pytest.mark.usefixtures("no_tls10")
def test_quiet_drop_of_versions_the_runtime_lacks(
    versions_server: Callable[..., DevServer], client_for: ClientFor,
) -> None:
    server = versions_server(V.TLSv1_2, V.TLSv1_3)
    client = client_for(server)
    client.supported_encryption = P.TLS10 | P.TLS12
    assert client.supported_encryption == P.TLS12
    assert negotiated(client, server) == "TLSv1.2"


def test_quiet_drop_of_tls13(
    monkeypatch: pytest.MonkeyPatch,
    versions_server: Callable[..., DevServer], client_for: ClientFor,
) -> None:
    """Without TLS 1.3 in the runtime, asking for 1.2 and 1.3 gets 1.2 from a 1.3 server."""
    monkeypatch.setattr(ssl, "HAS_TLSv1_3", False)
    server = versions_server(V.TLSv1_2, V.TLSv1_3)
    client = client_for(server)
    client.supported_encryption = P.TLS12 | P.TLS13
    assert client.supported_encryption == P.TLS12
    assert negotiated(client, server) == "TLSv1.2"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(0.2)
        yield sock


@pytest.mark.usefixtures("no_tls10")
@pytest.mark.parametrize("wanted", [P.TLS10, P.TLS10 | P.TLS11 | P.TLS12])
def test_unsafe_keeps_what_was_asked_and_connecting_fails(
    wanted: EncryptionProtocols, make_client: ClientFactory, listener: socket.socket,
) -> None:
    client = make_client("localhost", listener.getsockname()[1], security="ssl_implicit",
                         timeout=2.0)
    client.set_supported_encryption_unsafe(wanted)
    assert client.supported_encryption == wanted
    with pytest.raises(SmtpSecurityError, match="TLS10 were required"):
        client.connect()
    # Nothing reached the server: no downgrade, not even a TCP connection.
    with pytest.raises(TimeoutError):
        listener.accept()


def test_unsafe_on_a_runtime_patched_through_runtime_protocols(
    monkeypatch: pytest.MonkeyPatch, make_client: ClientFactory, listener: socket.socket,
) -> None:
    monkeypatch.setattr(tls_module, "runtime_protocols", lambda: P.TLS12 | P.TLS13)
    client = make_client("localhost", listener.getsockname()[1], security="ssl_explicit",
                         timeout=2.0)
    client.set_supported_encryption_unsafe(P.TLS11)
    with pytest.raises(SmtpSecurityError, match="TLS11"):
        client.connect()
    with pytest.raises(TimeoutError):
        listener.accept()


def test_settings_raise_for_nothing_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls_module, "runtime_protocols", lambda: P.TLS12 | P.TLS13)
    with pytest.raises(SmtpSecurityError, match="none of the TLS versions TLS10"):
        TlsSettings(protocols=P.TLS10).context()
    context = TlsSettings(protocols=P.TLS10 | P.TLS12).context()
    assert context.minimum_version == V.TLSv1_2 == context.maximum_version
    # The security level is only lowered when a legacy version is really used.
    assert context.security_level == TlsSettings().context().security_level > 0


def test_legacy_versions_lower_the_security_level() -> None:
    if not runtime_protocols() & P.TLS11:
        pytest.skip("this Python/OpenSSL cannot do TLS 1.1")
    context = TlsSettings(protocols=P.TLS11 | P.TLS12).context()
    assert context.security_level == 0
    assert (context.minimum_version, context.maximum_version) == (V.TLSv1_1, V.TLSv1_2)


# -- TLS 1.0 and 1.1 on this runtime ------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "flag", "name"),
    [(V.TLSv1_1, P.TLS11, "TLSv1.1"), (V.TLSv1, P.TLS10, "TLSv1")],
)
@pytest.mark.parametrize("unsafe", [True, False], ids=["unsafe", "safe"])
def test_legacy_version_against_a_legacy_server(
    version: V, flag: EncryptionProtocols, name: str, unsafe: bool,
    versions_server: Callable[..., DevServer], client_for: ClientFor,
) -> None:
    if not runtime_protocols() & flag:
        pytest.skip(f"this Python/OpenSSL cannot do {name}")
    server = versions_server(version, version)
    client = client_for(server)
    if unsafe:
        client.set_supported_encryption_unsafe(flag)
    else:
        client.supported_encryption = flag
    assert client.supported_encryption == flag
    assert negotiated(client, server) == name


def test_default_client_refuses_a_legacy_server(
    versions_server: Callable[..., DevServer], client_for: ClientFor,
) -> None:
    server = versions_server(V.TLSv1_1, V.TLSv1_1)
    with pytest.raises(SmtpSecurityError) as caught:
        client_for(server).connect()
    assert not isinstance(caught.value, TlsNotSpokenError)
    assert server.messages == []


def legacy_runtime() -> None:
    if runtime_protocols() != P.TLS10 | P.TLS11 | P.TLS12 | P.TLS13:
        pytest.skip("this Python/OpenSSL cannot do TLS 1.0 to 1.3")


@pytest.mark.parametrize(("low", "wanted", "expected"), [
    (V.TLSv1, P.TLS10 | P.TLS12, "TLSv1.2"),
    (V.TLSv1_2, P.TLS10 | P.TLS12, "TLSv1.2"),
    (V.TLSv1, P.TLS11 | P.TLS13, "TLSv1.3"),
    (V.TLSv1, P.TLS10 | P.TLS11 | P.TLS13, "TLSv1.3"),
], ids=["10|12 vs 1.0-1.3", "10|12 vs 1.2-1.3", "11|13 vs 1.0-1.3", "10|11|13 vs 1.0-1.3"])
def test_a_gap_keeps_the_highest_run_of_versions(
    low: V, wanted: EncryptionProtocols, expected: str, versions_server: Callable[..., DevServer],
    client_for: ClientFor, caplog: pytest.LogCaptureFixture,
) -> None:
    """Before, OpenSSL settled on the run below the gap: TLS10|TLS12 negotiated TLS 1.0 with a
    server offering 1.0 to 1.3, and failed against a 1.2/1.3-only server."""
    legacy_runtime()
    server = versions_server(low, V.TLSv1_3)
    client = client_for(server)
    with caplog.at_level(logging.WARNING, logger="mailwire.tls"):
        client.supported_encryption = wanted
    kept = P.TLS12 if expected == "TLSv1.2" else P.TLS13
    assert client.supported_encryption == kept
    dropped = tls_module.describe(wanted & ~kept)
    assert any(f"TLS versions {dropped} dropped" in message for message in caplog.messages)
    assert negotiated(client, server) == expected


def test_a_gap_leaves_out_the_versions_below_it(
    versions_server: Callable[..., DevServer], client_for: ClientFor,
) -> None:
    legacy_runtime()
    only_10 = versions_server(V.TLSv1, V.TLSv1)
    client = client_for(only_10)
    client.supported_encryption = P.TLS10 | P.TLS12
    with pytest.raises(SmtpSecurityError):
        client.connect()
    assert only_10.messages == []


@pytest.mark.parametrize(("wanted", "gap", "advice"), [
    (P.TLS10 | P.TLS12, "TLS11", "ask for TLS10|TLS11|TLS12 or TLS12"),
    (P.TLS11 | P.TLS13, "TLS12", "ask for TLS11|TLS12|TLS13 or TLS13"),
    (P.TLS10 | P.TLS13, "TLS11|TLS12", "ask for TLS10|TLS11|TLS12|TLS13 or TLS13"),
])
def test_unsafe_refuses_a_gap_and_names_it(
    wanted: EncryptionProtocols, gap: str, advice: str, make_client: ClientFactory,
    listener: socket.socket,
) -> None:
    client = make_client("localhost", listener.getsockname()[1], security="ssl_implicit",
                         timeout=2.0)
    with pytest.raises(SmtpUsageError) as caught:
        client.set_supported_encryption_unsafe(wanted)
    assert f"leave out {gap} between them" in str(caught.value)
    assert advice in str(caught.value)
    with pytest.raises(SmtpUsageError, match="leave out"):
        TlsSettings(protocols=wanted, exact_protocols=True).context()


# -- classifying handshake failures --------------------------------------------------------------


def test_handshake_that_stalls_is_a_timeout_not_a_dropped_handshake(
    make_client: ClientFactory, scripted_server: ScriptedServerFactory,
) -> None:
    """A server that takes the ClientHello and never answers: the client's timeout ends the
    handshake (asyncio's own handshake timeout would abort it like a server dropping it)."""
    server = scripted_server(StallHandshake(5.0))
    client = make_client("localhost", server.port, security="ssl_implicit", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(SmtpTimeoutError) as caught:
        client.connect()
    assert time.monotonic() - started < 1.5
    assert caught.value.phase == "TLS handshake"
    assert caught.value.seconds == 0.5


@pytest.mark.parametrize(
    "reason", ["UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"],
)
def test_version_mismatch_is_not_taken_for_plaintext(reason: str) -> None:
    """A TLS server that picked a version the client excludes did speak TLS: automatic modes
    must not treat it as a plaintext port."""
    error = ssl.SSLError(1, f"[SSL: {reason}]")
    error.reason = reason
    translated = translate(error, "TLS handshake", "mx.example:465", 5.0)
    assert isinstance(translated, SmtpSecurityError)
    assert not isinstance(translated, TlsNotSpokenError)
    assert reason in str(translated)


def test_plaintext_answer_is_still_recognised() -> None:
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER]")
    error.reason = "WRONG_VERSION_NUMBER"
    assert isinstance(translate(error, "TLS handshake", "mx.example:465", 5.0), TlsNotSpokenError)
