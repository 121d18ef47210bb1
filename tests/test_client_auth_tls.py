"""Authentication that uses TLS itself, on both clients against the development server:
SCRAM-*-PLUS bound to the server's certificate (and what that catches: a man in the middle the
client trusts), and EXTERNAL with a client certificate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from mailwire import AuthenticationError, SecurityOptions, SmtpKnownAuthenticationType
from mailwire.devserver import Certificates, DevServer, TlsMode
from tests.support.clients import Client, ClientFactory
from tests.support.tls_relay import TlsRelay

USER = "alice@example.com"
PASSWORD = "correct horse battery staple"
MESSAGE = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: tls\r\n\r\nhi\r\n"
FAMILIES = ("SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512")
Auth = SmtpKnownAuthenticationType
Servers = Callable[..., DevServer]


@pytest.fixture
def trace(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    return caplog


def auth_commands(trace: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in trace.records
            if record.name == "mailwire.protocol" and record.getMessage().startswith("C: AUTH")]


def tls_client(make_client: ClientFactory, port: int, certificates: Certificates,
               mode: SecurityOptions = SecurityOptions.SSL_IMPLICIT, **options: Any) -> Client:
    options.setdefault("username", USER)
    return make_client("localhost", port, security=mode, timeout=5.0,
                       ssl_context=certificates.client_context(), **options)


# -- SCRAM-*-PLUS ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("tls", [TlsMode.IMPLICIT, TlsMode.STARTTLS], ids=["implicit", "starttls"])
def test_plus_is_preferred_over_tls(make_client: ClientFactory, server_pool: Servers,
                                    certificates: Certificates, family: str,
                                    tls: TlsMode) -> None:
    server = server_pool(tls=tls, credentials={USER: PASSWORD},
                         mechanisms=(family, f"{family}-PLUS"))
    mode = (SecurityOptions.SSL_IMPLICIT if tls is TlsMode.IMPLICIT
            else SecurityOptions.SSL_EXPLICIT)
    client = tls_client(make_client, server.port, certificates, mode, password=PASSWORD)
    assert client.supported_authentication == Auth[family.replace("-", "_")] | Auth[
        f"{family}-PLUS".replace("-", "_")]
    client.send(MESSAGE)
    assert server.wait_for_messages(1)[0].auth_mechanism == f"{family}-PLUS"


def test_plain_scram_when_plus_is_not_allowed(make_client: ClientFactory, server_pool: Servers,
                                              certificates: Certificates) -> None:
    """The server supports binding and the client says it does not use it (``n``): allowed."""
    server = server_pool(tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD},
                         mechanisms=("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"))
    client = tls_client(make_client, server.port, certificates, password=PASSWORD,
                        allowed_authentication=Auth.SCRAM_SHA_256)
    client.send(MESSAGE)
    assert server.wait_for_messages(1)[0].auth_mechanism == "SCRAM-SHA-256"


def test_plus_needs_tls(make_client: ClientFactory, server_pool: Servers) -> None:
    server = server_pool(tls=TlsMode.NONE, credentials={USER: PASSWORD}, auth_require_tls=False,
                         mechanisms=("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1"))
    client = make_client(server.host, server.port, USER, PASSWORD, SecurityOptions.NONE,
                         timeout=5.0, allow_plaintext_credentials=True)
    assert client.supported_authentication == Auth.SCRAM_SHA_1  # PLUS is not offered without TLS
    client.send(MESSAGE)
    assert server.wait_for_messages(1)[0].auth_mechanism == "SCRAM-SHA-1"


@pytest.fixture(scope="module")
def relay_certificates(certificates: Certificates,
                       tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Another certificate for the same names, from the CA the client trusts."""
    return certificates.issue_for(certificates.hostnames, tmp_path_factory.mktemp("relay"))


@pytest.mark.parametrize(("allowed", "caught"), [
    (Auth.SCRAM_SHA_256_PLUS, True),
    (Auth.SCRAM_SHA_256, False),
], ids=["plus", "plain"])
def test_plus_catches_a_man_in_the_middle_that_plain_scram_lets_through(
        make_client: ClientFactory, server_pool: Servers, certificates: Certificates,
        relay_certificates: Certificates, trace: pytest.LogCaptureFixture, allowed: Auth,
        caught: bool) -> None:
    """A TLS-inspecting relay with a certificate the client trusts sits between client and
    server. Bound to the relay's certificate, PLUS fails at the server; plain SCRAM passes."""
    server = server_pool(tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD},
                         mechanisms=("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"))
    with TlsRelay(server.address, relay_certificates.server_context(),
                  certificates.client_context(), "localhost") as relay:
        client = tls_client(make_client, relay.port, certificates, password=PASSWORD,
                            allowed_authentication=allowed)
        if caught:
            with pytest.raises(AuthenticationError) as error:
                client.send(MESSAGE)
            assert error.value.code == 535
            assert server.messages == []
        else:
            client.send(MESSAGE)
            assert server.wait_for_messages(1)[0].auth_mechanism == "SCRAM-SHA-256"
        client.close()
    assert auth_commands(trace)[0].startswith(f"C: AUTH {allowed.mechanism_name} ")


# -- EXTERNAL ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_ca_file(client_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("client-ca") / "ca.pem"
    client_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def client_certificate(client_ca: trustme.CA,
                       tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Alice's certificate (email address ``USER``) and key, as files."""
    leaf = client_ca.issue_cert(USER)
    directory = tmp_path_factory.mktemp("client-certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return str(cert), str(key)


@pytest.fixture
def external_server(server_pool: Servers, client_ca_file: Path) -> DevServer:
    return server_pool(tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD},
                       mechanisms=("PLAIN", "EXTERNAL"), client_ca_file=client_ca_file)


def certificate_client(make_client: ClientFactory, server: DevServer, certificates: Certificates,
                       client_certificate: tuple[str, str], **options: Any) -> Client:
    return make_client("localhost", server.port, security=SecurityOptions.SSL_IMPLICIT,
                       timeout=5.0, ca_file=str(certificates.ca_file),
                       client_certificate=client_certificate, **options)


@pytest.mark.parametrize("username", ["", USER], ids=["from the certificate", "named"])
def test_external_with_a_client_certificate(
        make_client: ClientFactory, external_server: DevServer, certificates: Certificates,
        client_certificate: tuple[str, str], trace: pytest.LogCaptureFixture,
        username: str) -> None:
    client = certificate_client(make_client, external_server, certificates, client_certificate,
                                username=username)
    client.send(MESSAGE)
    received = external_server.wait_for_messages(1)[0]
    assert (received.auth_mechanism, received.auth_user) == ("EXTERNAL", USER)
    assert auth_commands(trace) == ["C: AUTH EXTERNAL <redacted>"]  # the initial response


def test_external_as_someone_else_is_refused(
        make_client: ClientFactory, external_server: DevServer, certificates: Certificates,
        client_certificate: tuple[str, str]) -> None:
    client = certificate_client(make_client, external_server, certificates, client_certificate,
                                username="mallory@example.com")
    with pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    assert caught.value.code == 535
    assert "EXTERNAL authentication failed for user 'mallory@example.com'" in str(caught.value)


def test_external_is_not_chosen_over_a_password(
        make_client: ClientFactory, external_server: DevServer, certificates: Certificates,
        client_certificate: tuple[str, str]) -> None:
    client = certificate_client(make_client, external_server, certificates, client_certificate,
                                username=USER, password=PASSWORD)
    client.send(MESSAGE)
    assert external_server.wait_for_messages(1)[0].auth_mechanism == "PLAIN"
    client.allowed_authentication = Auth.EXTERNAL
    client.close()
    client.send(MESSAGE)
    assert external_server.wait_for_messages(2)[1].auth_mechanism == "EXTERNAL"


def test_without_a_client_certificate_there_is_no_external(
        make_client: ClientFactory, external_server: DevServer, certificates: Certificates,
        trace: pytest.LogCaptureFixture) -> None:
    client = make_client("localhost", external_server.port, "", security="ssl_implicit",
                         timeout=5.0, ca_file=str(certificates.ca_file))
    with pytest.raises(AuthenticationError, match="no common authentication mechanism"):
        client.send(MESSAGE)
    assert auth_commands(trace) == []
