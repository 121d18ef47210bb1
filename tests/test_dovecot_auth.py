"""Both clients against Dovecot's SASL implementations, behind Postfix (see
``tests/support/dovecot_sasl.py`` for what this Dovecot offers and why).

Every mechanism Dovecot 2.3 offers logs in with the right secret and fails with 535 (and no
other mechanism tried) with a wrong one; the preferred one is chosen; a refused token's JSON
error (with Dovecot's ``openid-configuration``) is surfaced, and a token provider's fresh token
gets in on the retry. SCRAM over TLS here also shows that Dovecot takes the client's ``y`` (it
could bind, the server offers no PLUS).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from mailwire import AuthenticationError, SecurityOptions, SmtpKnownAuthenticationType
from mailwire.auth import PREFERENCE, OAuthAuthenticationError
from tests.support.clients import Client, ClientFactory
from tests.support.dovecot_sasl import OPENID_CONFIGURATION, PASSWORDS, DovecotPostfix

USER = "alice"
Auth = SmtpKnownAuthenticationType
OFFERED = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "OAUTHBEARER",
           "XOAUTH2")
TOKEN_MECHANISMS = ("OAUTHBEARER", "XOAUTH2")


def message(tag: str) -> bytes:
    return (f"From: alice@example.test\r\nTo: {tag}@example.test\r\nSubject: {tag}\r\n\r\n"
            "hi\r\n").encode()


def client_for(make_client: ClientFactory, servers: DovecotPostfix, *,
               allowed: Any = Auth.ALL, mode: SecurityOptions = SecurityOptions.SSL_EXPLICIT,
               **secrets: Any) -> Client:
    postfix = servers.postfix
    port = postfix.port if mode is SecurityOptions.SSL_EXPLICIT else postfix.implicit_tls_port
    return make_client("localhost", port, USER, security=mode, timeout=10.0,
                       ssl_context=postfix.client_context(), allowed_authentication=allowed,
                       **secrets)


def secrets_for(mechanism: str, servers: DovecotPostfix, good: bool) -> dict[str, str]:
    if mechanism in TOKEN_MECHANISMS:
        return {"oauth_token": servers.token(USER) if good else servers.token("mallory")[:-4]}
    return {"password": PASSWORDS[USER] if good else "wrong password"}


@pytest.fixture
def trace(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    return caplog


def test_what_dovecot_offers(make_client: ClientFactory, dovecot_postfix: DovecotPostfix) -> None:
    client = client_for(make_client, dovecot_postfix, password=PASSWORDS[USER])
    expected = Auth.NONE
    for name in OFFERED:
        expected |= Auth[name.replace("-", "_")]
    assert client.supported_authentication == expected


@pytest.mark.parametrize("mechanism", OFFERED)
@pytest.mark.parametrize("mode", [SecurityOptions.SSL_EXPLICIT, SecurityOptions.SSL_IMPLICIT],
                         ids=["starttls", "implicit"])
def test_each_mechanism_logs_in(make_client: ClientFactory, dovecot_postfix: DovecotPostfix,
                                mechanism: str, mode: SecurityOptions) -> None:
    tag = f"{mechanism.lower()}-{uuid.uuid4().hex[:12]}"
    client = client_for(make_client, dovecot_postfix, allowed=Auth[mechanism.replace("-", "_")],
                        mode=mode, **secrets_for(mechanism, dovecot_postfix, good=True))
    client.send(message(tag))
    client.quit()
    assert dovecot_postfix.postfix.message(to=f"{tag}@example.test")
    assert (mechanism, USER) in dovecot_postfix.sasl_logins()


@pytest.mark.parametrize("mechanism", OFFERED)
def test_a_wrong_secret_is_535_and_nothing_else_is_tried(
        make_client: ClientFactory, dovecot_postfix: DovecotPostfix, mechanism: str,
        trace: pytest.LogCaptureFixture) -> None:
    # Everything allowed and a right password too for the token mechanisms: a client that
    # moved on to another mechanism after the refusal would get in.
    secrets = secrets_for(mechanism, dovecot_postfix, good=False)
    if mechanism in TOKEN_MECHANISMS:
        secrets["password"] = PASSWORDS[USER]
    allowed = set(PREFERENCE[PREFERENCE.index(mechanism):]) & set(OFFERED)
    assert len(allowed) > 1 or mechanism == "LOGIN"
    client = client_for(make_client, dovecot_postfix, allowed=allowed, **secrets)
    with pytest.raises(AuthenticationError) as caught:
        client.send(message("refused"))
    assert caught.value.code == 535
    assert f"{mechanism} authentication failed for user 'alice'" in str(caught.value)
    auth_lines = [record.getMessage() for record in trace.records
                  if record.getMessage().startswith("C: AUTH")]
    assert len(auth_lines) == 1 and auth_lines[0].startswith(f"C: AUTH {mechanism}")


@pytest.mark.parametrize(("secret", "expected"), [("password", "SCRAM-SHA-256"),
                                                  ("oauth_token", "OAUTHBEARER")])
def test_the_preferred_mechanism_is_chosen(make_client: ClientFactory,
                                           dovecot_postfix: DovecotPostfix, secret: str,
                                           expected: str) -> None:
    value = PASSWORDS[USER] if secret == "password" else dovecot_postfix.token(USER)
    client = client_for(make_client, dovecot_postfix, **{secret: value})
    client.connect()
    assert client.connection_info is not None
    assert client.connection_info.auth_mechanism == expected
    client.quit()


@pytest.mark.parametrize("mechanism", TOKEN_MECHANISMS)
def test_dovecots_oauth_error_is_surfaced(make_client: ClientFactory,
                                          dovecot_postfix: DovecotPostfix,
                                          mechanism: str) -> None:
    client = client_for(make_client, dovecot_postfix, allowed={mechanism},
                        oauth_token="not-a-jwt")
    with pytest.raises(OAuthAuthenticationError) as caught:
        client.send(message("oauth-error"))
    error = caught.value
    assert error.code == 535  # after the client's answer to the error challenge
    assert error.openid_configuration == OPENID_CONFIGURATION
    assert error.status in ("invalid_token", "401")


def test_a_provider_gets_in_on_the_retry(make_client: ClientFactory,
                                         dovecot_postfix: DovecotPostfix) -> None:
    calls: list[bool] = []

    def provider(ignore_existing_token: bool) -> str:
        calls.append(ignore_existing_token)
        return dovecot_postfix.token(USER) if ignore_existing_token else "expired-token"

    tag = f"refreshed-{uuid.uuid4().hex[:12]}"
    client = client_for(make_client, dovecot_postfix, oauth_token=provider)
    client.send(message(tag))
    client.quit()
    assert calls == [False, True]
    assert dovecot_postfix.postfix.message(to=f"{tag}@example.test")
