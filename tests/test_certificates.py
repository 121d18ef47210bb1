"""Certificate control: default verification, CA file and folder, a caller's SSLContext, the
validation callback, client certificates and the loudly named way to skip verification.

Servers are aiosmtpd in STARTTLS or implicit-TLS mode with certificates from trustme: the
session's (CA + a certificate for localhost, 127.0.0.1 and ::1), one for the wrong host from
the same CA, and one from an unknown CA. Every test that connects runs against ``SmtpClient`` and
``AsyncSmtpClient`` (the ``make_client`` fixture).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509

from mailwire import (
    ConnectionLostError,
    EncryptionProtocols,
    SecurityOptions,
    SmtpSecurityError,
    SmtpUsageError,
)
from mailwire.client import simple_message
from mailwire.devserver import Certificates, DevServer, TlsMode
from mailwire.results import SendResult
from tests.support.clients import Client, ClientFactory
from tests.support.proxies import RunningProxy

SENDER = "sender@example.com"
RECIPIENT = "rcpt@example.org"
StartServer = Callable[..., DevServer]
ClientFor = Callable[..., Client]
MODES = {TlsMode.STARTTLS: SecurityOptions.SSL_EXPLICIT,
         TlsMode.IMPLICIT: SecurityOptions.SSL_IMPLICIT}
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number:UserWarning")
BOTH = pytest.mark.parametrize("tls", list(MODES), ids=lambda mode: mode.value)


@pytest.fixture
def client_for(make_client: ClientFactory) -> ClientFor:
    """``client_for(server, **options)``: a client (sync or async) for ``server``'s mode."""

    def make(server: DevServer, **options: Any) -> Client:
        options.setdefault("timeout", 5.0)
        return make_client("localhost", server.port, security=MODES[server.tls], **options)

    return make


def send_mail(client: Client, subject: str, body: str) -> SendResult:
    """``send_mail`` of either client (the blocking face of the async one has only ``send``)."""
    return client.send(simple_message(SENDER, RECIPIENT, subject, body, None))


def send_one(client: Client, server: DevServer) -> None:
    with client:
        send_mail(client, "certificates", "checked")
    assert len(server.wait_for_messages(1)) == 1


def refused(client: Client, server: DevServer) -> SmtpSecurityError:
    with pytest.raises(SmtpSecurityError) as caught:
        send_mail(client, "never", "sent")
    assert server.messages == []
    return caught.value


class Recorder:
    """A validation callback that records its calls and answers ``accept``."""

    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.calls: list[tuple[x509.Certificate, str, str | None]] = []

    def __call__(self, certificate: x509.Certificate, host: str, error: str | None) -> bool:
        self.calls.append((certificate, host, error))
        return self.accept


def san_names(certificate: x509.Certificate) -> list[str]:
    extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return extension.value.get_values_for_type(x509.DNSName)


# -- verification by default and with a CA ---------------------------------------------------------


@BOTH
def test_wrong_host(tls: TlsMode, smtp_server: StartServer, certificates: Certificates,
                    wrong_host_certificates: Certificates,
                    client_for: ClientFor) -> None:
    server = smtp_server(tls=tls, certificates=wrong_host_certificates)
    error = refused(client_for(server, ca_file=str(certificates.ca_file)), server)
    assert "certificate" in str(error)
    assert "localhost" in str(error)  # the name that did not match


@BOTH
def test_unknown_ca(tls: TlsMode, smtp_server: StartServer, certificates: Certificates,
                    unknown_ca_certificates: Certificates,
                    client_for: ClientFor) -> None:
    server = smtp_server(tls=tls, certificates=unknown_ca_certificates)
    error = refused(client_for(server, ca_file=str(certificates.ca_file)), server)
    assert "certificate" in str(error)
    assert "issuer" in str(error) or "unable to get" in str(error)


def test_private_ca_is_not_trusted_by_default(smtp_server: StartServer,
                                              client_for: ClientFor) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS)
    refused(client_for(server), server)


@BOTH
def test_ca_file(tls: TlsMode, smtp_server: StartServer, certificates: Certificates,
                 client_for: ClientFor) -> None:
    server = smtp_server(tls=tls)
    send_one(client_for(server, ca_file=str(certificates.ca_file)), server)


@pytest.fixture
def ca_folder(certificates: Certificates, tmp_path: Path) -> Path:
    """A hashed CA folder (``openssl rehash``) holding the session CA."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to hash a CA folder")
    folder = tmp_path / "cas"
    folder.mkdir()
    shutil.copy(certificates.ca_file, folder / "session-ca.pem")
    subprocess.run([openssl, "rehash", str(folder)], check=True, capture_output=True)
    return folder


def test_ca_path(ca_folder: Path, smtp_server: StartServer, client_for: ClientFor) -> None:
    server = smtp_server(tls=TlsMode.IMPLICIT)
    send_one(client_for(server, ca_path=str(ca_folder)), server)


# -- a caller's SSLContext -------------------------------------------------------------------------


@BOTH
def test_ssl_context_is_used(tls: TlsMode, smtp_server: StartServer,
                             certificates: Certificates,
                             unknown_ca_certificates: Certificates,
                             client_for: ClientFor) -> None:
    server = smtp_server(tls=tls)
    send_one(client_for(server, ssl_context=certificates.client_context()), server)
    # Used unchanged: a context that trusts another CA refuses the server.
    server.clear()
    refused(client_for(server, ssl_context=unknown_ca_certificates.client_context()), server)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(0.2)
        yield sock


@pytest.mark.parametrize(
    "option",
    [
        {"ca_file": "ca.pem"},
        {"ca_path": "/etc/ssl/certs"},
        {"supported_encryption": EncryptionProtocols.TLS12},
        {"client_certificate": "client.pem"},
        {"certificate_validation_callback": lambda *_: True},
        {"dangerously_skip_certificate_verification": True},
    ],
    ids=lambda option: next(iter(option)),
)
def test_ssl_context_with_other_tls_options(option: dict[str, Any], listener: socket.socket,
                                            make_client: ClientFactory,
                                            certificates: Certificates) -> None:
    client = make_client("localhost", listener.getsockname()[1], security="ssl_implicit",
                         ssl_context=certificates.client_context(), **option)
    with pytest.raises(SmtpUsageError, match="ssl_context"):
        client.connect()
    with pytest.raises(TimeoutError):
        listener.accept()  # refused before connecting


# -- the validation callback -----------------------------------------------------------------------


@BOTH
def test_callback_accepts_an_unknown_ca(tls: TlsMode, smtp_server: StartServer,
                                        certificates: Certificates,
                                        unknown_ca_certificates: Certificates,
                                        client_for: ClientFor) -> None:
    server = smtp_server(tls=tls, certificates=unknown_ca_certificates)
    callback = Recorder(accept=True)
    send_one(client_for(server, ca_file=str(certificates.ca_file),
                        certificate_validation_callback=callback), server)
    [(certificate, host, error)] = callback.calls
    assert isinstance(certificate, x509.Certificate)
    assert "localhost" in san_names(certificate)
    served = x509.load_pem_x509_certificate(unknown_ca_certificates.cert_file.read_bytes())
    assert certificate == served
    assert host == "localhost"
    assert error is not None


@BOTH
def test_callback_rejects(tls: TlsMode, smtp_server: StartServer, certificates: Certificates,
                          unknown_ca_certificates: Certificates,
                          client_for: ClientFor) -> None:
    server = smtp_server(tls=tls, certificates=unknown_ca_certificates)
    callback = Recorder(accept=False)
    error = refused(client_for(server, certificate_validation_callback=callback), server)
    assert "rejected by the validation callback" in str(error)
    assert len(callback.calls) == 1


@pytest.mark.parametrize("answer", ["certificate expired", NotImplemented, [False], 1],
                         ids=["error string", "NotImplemented", "list", "one"])
def test_only_true_accepts(answer: object, smtp_server: StartServer,
                           unknown_ca_certificates: Certificates,
                           client_for: ClientFor) -> None:
    """A truthy answer that is not True (SECURITY.md, "Certificate validation callback")."""
    server = smtp_server(tls=TlsMode.STARTTLS, certificates=unknown_ca_certificates)
    error = refused(client_for(server, certificate_validation_callback=lambda *_: answer),
                    server)
    assert "rejected by the validation callback" in str(error)
    assert f"it returned a {type(answer).__name__}, and only True accepts" in str(error)


def test_callback_can_reject_a_good_certificate(smtp_server: StartServer,
                                                certificates: Certificates,
                                                client_for: ClientFor) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS)
    callback = Recorder(accept=False)
    refused(client_for(server, ca_file=str(certificates.ca_file),
                       certificate_validation_callback=callback), server)
    assert callback.calls[0][2] is None


@pytest.mark.parametrize("trust", ["ca_file", "ca_path"])
def test_callback_gets_no_error_for_a_good_certificate(
    trust: str, request: pytest.FixtureRequest, smtp_server: StartServer,
    certificates: Certificates, client_for: ClientFor,
) -> None:
    server = smtp_server(tls=TlsMode.IMPLICIT)
    where = (str(certificates.ca_file) if trust == "ca_file"
             else str(request.getfixturevalue("ca_folder")))
    callback = Recorder(accept=True)
    send_one(client_for(server, certificate_validation_callback=callback, **{trust: where}),
             server)
    [(_certificate, host, error)] = callback.calls
    assert (host, error) == ("localhost", None)


def test_callback_is_told_about_a_wrong_host(smtp_server: StartServer,
                                             certificates: Certificates,
                                             wrong_host_certificates: Certificates,
                                             client_for: ClientFor) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS, certificates=wrong_host_certificates)
    callback = Recorder(accept=True)
    send_one(client_for(server, ca_file=str(certificates.ca_file),
                        certificate_validation_callback=callback), server)
    [(certificate, _host, error)] = callback.calls
    assert san_names(certificate) == ["wrong.example"]
    assert error is not None


def test_callback_that_raises(smtp_server: StartServer, client_for: ClientFor) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS)

    def broken(*_: object) -> bool:
        raise RuntimeError("callback bug")

    error = refused(client_for(server, certificate_validation_callback=broken), server)
    assert "callback failed" in str(error)


def test_callback_through_a_proxy_sees_the_smtp_host(
    socks5_proxy: RunningProxy, smtp_server: StartServer, certificates: Certificates,
    client_for: ClientFor,
) -> None:
    server = smtp_server(tls=TlsMode.IMPLICIT)
    callback = Recorder(accept=True)
    send_one(client_for(server, proxy=socks5_proxy.url, ca_file=str(certificates.ca_file),
                        certificate_validation_callback=callback), server)
    assert [(host, error) for _c, host, error in callback.calls] == [("localhost", None)]


# -- client certificates ---------------------------------------------------------------------------


class ClientIdentity:
    """A client certificate from its own CA, as separate files and as one combined file."""

    def __init__(self, folder: Path) -> None:
        self.authority = trustme.CA()
        leaf = self.authority.issue_cert("client.mailwire.test")
        self.ca_file = folder / "client-ca.pem"
        self.cert_file = folder / "client-cert.pem"
        self.key_file = folder / "client-key.pem"
        self.combined = folder / "client.pem"
        self.authority.cert_pem.write_to_path(self.ca_file)
        leaf.cert_chain_pems[0].write_to_path(self.cert_file)
        leaf.private_key_pem.write_to_path(self.key_file)
        leaf.private_key_and_cert_chain_pem.write_to_path(self.combined)


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> ClientIdentity:
    return ClientIdentity(tmp_path_factory.mktemp("client-identity"))


def demanding_server(start: StartServer, certificates: Certificates, identity: ClientIdentity,
                     tls: TlsMode, maximum: ssl.TLSVersion | None = None) -> DevServer:
    """A server that completes TLS only with a client certificate from ``identity``'s CA."""
    context = certificates.server_context(maximum_version=maximum)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=identity.ca_file)
    return start(tls=tls, ssl_context=context)


@BOTH
@pytest.mark.parametrize("form", ["pair", "combined"])
def test_client_certificate_is_presented(
    tls: TlsMode, form: str, smtp_server: StartServer, certificates: Certificates,
    identity: ClientIdentity, client_for: ClientFor,
) -> None:
    server = demanding_server(smtp_server, certificates, identity, tls)
    chosen: str | tuple[str, str] = (
        (str(identity.cert_file), str(identity.key_file)) if form == "pair"
        else str(identity.combined)
    )
    send_one(client_for(server, ca_file=str(certificates.ca_file), client_certificate=chosen),
             server)


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, None], ids=["tls12", "tls13"])
def test_without_client_certificate_a_demanding_server_refuses(
    maximum: ssl.TLSVersion | None, smtp_server: StartServer, certificates: Certificates,
    identity: ClientIdentity, client_for: ClientFor,
) -> None:
    """TLS 1.2: the server ends the handshake, a security error. TLS 1.3: the client's side of
    the handshake is already complete when the server checks, and aiosmtpd then closes
    without an alert, so all the client can see is a connection closed before the greeting."""
    server = demanding_server(smtp_server, certificates, identity, TlsMode.IMPLICIT, maximum)
    client = client_for(server, ca_file=str(certificates.ca_file))
    expected = SmtpSecurityError if maximum else (SmtpSecurityError, ConnectionLostError)
    with pytest.raises(expected):
        send_mail(client, "never", "sent")
    assert server.messages == []


def test_client_certificate_that_cannot_be_loaded(tmp_path: Path,
                                                  smtp_server: StartServer,
                                                  client_for: ClientFor) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS)
    missing = tmp_path / "missing.pem"
    with pytest.raises(SmtpUsageError, match="client certificate"):
        client_for(server, client_certificate=str(missing)).connect()


# -- skipping verification -------------------------------------------------------------------------


@BOTH
@pytest.mark.parametrize("fixture", ["unknown_ca_certificates", "wrong_host_certificates"])
def test_dangerously_skip_certificate_verification(
    tls: TlsMode, fixture: str, request: pytest.FixtureRequest, smtp_server: StartServer,
    client_for: ClientFor,
) -> None:
    served: Certificates = request.getfixturevalue(fixture)
    server = smtp_server(tls=tls, certificates=served)
    send_one(client_for(server, dangerously_skip_certificate_verification=True), server)


def test_ca_file_that_cannot_be_loaded(tmp_path: Path, listener: socket.socket,
                                       make_client: ClientFactory) -> None:
    client = make_client("localhost", listener.getsockname()[1], security="ssl_implicit",
                         ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(SmtpUsageError, match="cannot load the certificate authorities"):
        client.connect()
    with pytest.raises(TimeoutError):
        listener.accept()
