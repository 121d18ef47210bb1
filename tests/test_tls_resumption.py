"""TLS sessions are resumed on the next connection to the same server (both clients)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailwire import SecurityOptions
from mailwire.devserver import Certificates, DevServer, TlsMode
from tests.support.clients import ClientFactory

MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: again\r\n\r\nhi\r\n"


@pytest.mark.parametrize(("tls", "security"), [(TlsMode.IMPLICIT, SecurityOptions.SSL_IMPLICIT),
                                               (TlsMode.STARTTLS, SecurityOptions.SSL_EXPLICIT)])
def test_the_next_connection_resumes_the_session(
    smtp_server: Callable[..., DevServer], make_client: ClientFactory,
    certificates: Certificates, tls: TlsMode, security: SecurityOptions,
) -> None:
    server = smtp_server(tls=tls)
    client = make_client("localhost", server.port, security=security,
                         ca_file=str(certificates.ca_file))
    first = client.connect()
    assert first.tls_version and not first.tls_resumed
    client.send(MESSAGE)
    client.quit()
    second = client.connect()
    assert second.tls_resumed
    assert second.peer_certificate == first.peer_certificate
    client.send(MESSAGE)
    client.quit()
    assert len(server.wait_for_messages(2)) == 2


def test_a_session_is_offered_only_to_the_server_it_came_from(
    smtp_server: Callable[..., DevServer], make_client: ClientFactory,
    certificates: Certificates,
) -> None:
    one = smtp_server(tls=TlsMode.IMPLICIT)
    other = smtp_server(tls=TlsMode.IMPLICIT)
    first = make_client("localhost", one.port, security="ssl_implicit",
                        ca_file=str(certificates.ca_file))
    first.connect()
    first.quit()
    second = make_client("localhost", other.port, security="ssl_implicit",
                         ca_file=str(certificates.ca_file))
    assert not second.connect().tls_resumed
    second.quit()
