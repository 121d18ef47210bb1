"""No secret in the protocol log, in ``repr(client)`` or in exception text (SECURITY.md item 5).

PLAIN, LOGIN and XOAUTH2 put the secret (or its base64) on the wire; the ``mailwire.protocol``
trace must show that an AUTH happened without showing what was in it, on success and on failure.
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from mailwire import (
    AuthenticationError,
    SecurityOptions,
    SmtpClient,
    SmtpError,
    SmtpKnownAuthenticationType,
)
from mailwire.devserver import Certificates, DevServer, TlsMode

USER = "alice@example.com"
PASSWORD = "Tr0ub4dor&3-password"
TOKEN = "ya29.A0ARrdaM-oauth-bearer-token"
WRONG_PASSWORD = "wr0ng-Tr0ub4dor&3"
WRONG_TOKEN = "ya29.wrong-oauth-bearer-token"
MESSAGE = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: s\r\n\r\nbody\r\n"


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def forbidden(mechanism: str, secret: str) -> list[str]:
    """Every form in which ``secret`` could leak for ``mechanism``."""
    forms = [secret, b64(secret)]
    if mechanism == "PLAIN":
        forms += [b64(f"\0{USER}\0{secret}"), b64(f"{USER}\0{USER}\0{secret}")]
    if mechanism == "LOGIN":
        forms.append(b64(USER))  # LOGIN continuation lines are redacted too
    if mechanism == "XOAUTH2":
        forms.append(b64(f"user={USER}\x01auth=Bearer {secret}\x01\x01"))
    return forms


@pytest.fixture(scope="module")
def server(certificates: Certificates) -> Iterator[DevServer]:
    with DevServer(
        tls=TlsMode.IMPLICIT,
        certificates=certificates,
        credentials={USER: PASSWORD},
        tokens={USER: TOKEN},
    ) as running:
        yield running


@pytest.fixture
def protocol_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    return caplog


def make_client(
    server: DevServer, certificates: Certificates, mechanism: str, secret: str
) -> SmtpClient:
    allowed = SmtpKnownAuthenticationType[mechanism.replace("-", "_")]
    secrets: dict[str, Any] = (
        {"oauth_token": secret} if mechanism == "XOAUTH2" else {"password": secret}
    )
    return SmtpClient(
        "localhost",
        server.port,
        USER,
        security=SecurityOptions.SSL_IMPLICIT,
        timeout=5.0,
        ssl_context=certificates.client_context(),
        allowed_authentication=allowed,
        **secrets,
    )


def everything_shown(caplog: pytest.LogCaptureFixture, *extra: object) -> str:
    shown = [record.getMessage() for record in caplog.records]
    shown.append(caplog.text)
    shown += [str(item) for item in extra]
    return "\n".join(shown)


def exception_text(error: BaseException) -> str:
    parts = ["".join(traceback.format_exception(error)), repr(error)]
    if isinstance(error, SmtpError):
        parts.append(str(error.text))
    return "\n".join(parts)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "XOAUTH2"])
def test_successful_auth_leaks_nothing(
    server: DevServer,
    certificates: Certificates,
    protocol_log: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    secret = TOKEN if mechanism == "XOAUTH2" else PASSWORD
    client = make_client(server, certificates, mechanism, secret)
    with client:
        client.send(MESSAGE)
        shown = everything_shown(protocol_log, repr(client), client.connection_info)

    assert server.messages[-1].auth_mechanism == mechanism
    # The trace was on and did cover the exchange: the test is not vacuous.
    assert f"C: AUTH {mechanism}" in shown
    assert "S: 235" in shown
    for form in forbidden(mechanism, secret):
        assert form not in shown, f"{form!r} leaked"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "XOAUTH2"])
def test_failed_auth_leaks_nothing(
    server: DevServer,
    certificates: Certificates,
    protocol_log: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    secret = WRONG_TOKEN if mechanism == "XOAUTH2" else WRONG_PASSWORD
    client = make_client(server, certificates, mechanism, secret)
    with client, pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    assert caught.value.code == 535

    shown = everything_shown(protocol_log, repr(client), exception_text(caught.value))
    assert f"C: AUTH {mechanism}" in shown
    assert "S: 535" in shown
    for form in forbidden(mechanism, secret):
        assert form not in shown, f"{form!r} leaked"


def test_validate_credentials_leaks_nothing(
    server: DevServer, certificates: Certificates, protocol_log: pytest.LogCaptureFixture
) -> None:
    client = make_client(server, certificates, "PLAIN", WRONG_PASSWORD)
    assert client.validate_credentials() is False
    client.quit()
    shown = everything_shown(protocol_log, repr(client))
    assert "C: AUTH PLAIN" in shown
    for form in forbidden("PLAIN", WRONG_PASSWORD):
        assert form not in shown


def test_repr_shows_no_secret() -> None:
    client = SmtpClient("smtp.example.com", 587, USER, PASSWORD, oauth_token=TOKEN)
    text = repr(client)
    assert "smtp.example.com" in text
    assert PASSWORD not in text and TOKEN not in text
    assert b64(PASSWORD) not in text and b64(TOKEN) not in text


def test_the_rest_of_the_conversation_is_traced(
    server: DevServer, certificates: Certificates, protocol_log: pytest.LogCaptureFixture
) -> None:
    """Redaction is targeted: envelope commands and replies stay visible."""
    with make_client(server, certificates, "PLAIN", PASSWORD) as client:
        client.send(MESSAGE)
    shown = everything_shown(protocol_log)
    assert "C: MAIL FROM:<alice@example.com>" in shown
    assert "C: RCPT TO:<bob@example.org>" in shown
    assert "S: 220 " in shown
    assert "body" not in shown  # message content is not traced either
