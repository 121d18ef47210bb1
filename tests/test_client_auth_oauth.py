"""OAUTHBEARER and XOAUTH2 on both clients against the development server: the server's JSON
error surfaced, the RFC 7628 answer to it, token providers (asked before AUTH, refreshed before
expiry, refreshed once after a refused token), and tokens too long for the AUTH line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from mailwire import AuthenticationError, SecurityOptions, SmtpKnownAuthenticationType
from mailwire.auth import OAuthAuthenticationError, OAuthToken
from mailwire.auth.tokens import REFRESH_MARGIN
from mailwire.devserver import Certificates, DevServer, TlsMode
from mailwire.devserver.auth import OAUTHBEARER_ERROR
from tests.support.clients import Client, ClientFactory

USER = "alice@example.com"
TOKEN = "ya29.right-token"
STALE = "ya29.stale-token"
LONG_TOKEN = "eyJ" + "x" * 1500  # a JWT from a large directory: more than an AUTH line holds
MESSAGE = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: oauth\r\n\r\nhi\r\n"
Auth = SmtpKnownAuthenticationType
BEARER = ["OAUTHBEARER", "XOAUTH2"]


@pytest.fixture
def server(server_pool: Callable[..., DevServer]) -> DevServer:
    return server_pool(tls=TlsMode.IMPLICIT, credentials={USER: "password"},
                       tokens={USER: TOKEN, "long@example.com": LONG_TOKEN})


@pytest.fixture
def trace(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    return caplog


def auth_lines(trace: pytest.LogCaptureFixture) -> list[str]:
    """The client's lines from each AUTH command to the verdict."""
    lines, inside = [], False
    for record in trace.records:
        if record.name != "mailwire.protocol":
            continue
        text = record.getMessage()
        inside = inside or text.startswith("C: AUTH")
        if inside and text.startswith("C: "):
            lines.append(text)
        if text.startswith(("S: 235", "S: 535", "S: 501")):
            inside = False
    return lines


def client_for(make_client: ClientFactory, server: DevServer, certificates: Certificates,
               mechanism: str, oauth_token: Any, user: str = USER) -> Client:
    return make_client("localhost", server.port, user, security=SecurityOptions.SSL_IMPLICIT,
                       timeout=5.0, ssl_context=certificates.client_context(),
                       oauth_token=oauth_token, allowed_authentication=Auth[mechanism])


class Provider:
    """Hands out the given tokens in turn, recording each ``ignore_existing_token``."""

    def __init__(self, *tokens: str | OAuthToken) -> None:
        self.tokens = list(tokens)
        self.calls: list[bool] = []

    def __call__(self, ignore_existing_token: bool) -> str | OAuthToken:
        self.calls.append(ignore_existing_token)
        return self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]


# -- the server's error --------------------------------------------------------------------------


def test_oauthbearer_error_is_surfaced(make_client: ClientFactory, server: DevServer,
                                       certificates: Certificates,
                                       trace: pytest.LogCaptureFixture) -> None:
    client = client_for(make_client, server, certificates, "OAUTHBEARER", STALE)
    with pytest.raises(OAuthAuthenticationError) as caught:
        client.send(MESSAGE)
    error = caught.value
    # 535 comes only after the client answered the error challenge with %x01 (else 501).
    assert error.code == 535
    assert error.status == OAUTHBEARER_ERROR["status"]
    assert error.scope == OAUTHBEARER_ERROR["scope"]
    assert error.openid_configuration == OAUTHBEARER_ERROR["openid-configuration"]
    text = str(error)
    assert f"OAUTHBEARER authentication failed for user {USER!r} at localhost:{server.port}" in text
    assert "status=invalid_token" in text and STALE not in text
    assert auth_lines(trace) == ["C: AUTH OAUTHBEARER <redacted>", "C: <redacted>"]
    assert server.messages == []


def test_xoauth2_error_is_surfaced(make_client: ClientFactory, server: DevServer,
                                   certificates: Certificates) -> None:
    client = client_for(make_client, server, certificates, "XOAUTH2", STALE)
    with pytest.raises(OAuthAuthenticationError) as caught:
        client.send(MESSAGE)
    assert (caught.value.code, caught.value.status, caught.value.scope) == (
        535, "401", "https://mail.google.com/")
    assert isinstance(caught.value, AuthenticationError)


@pytest.mark.parametrize("mechanism", BEARER)
def test_validate_credentials_is_false_for_a_refused_token(
        make_client: ClientFactory, server: DevServer, certificates: Certificates,
        mechanism: str) -> None:
    assert client_for(make_client, server, certificates, mechanism, STALE
                      ).validate_credentials() is False
    assert client_for(make_client, server, certificates, mechanism, TOKEN
                      ).validate_credentials() is True


# -- token providers -----------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", BEARER)
def test_a_provider_is_asked_before_auth_once_per_connection(
        make_client: ClientFactory, server: DevServer, certificates: Certificates,
        mechanism: str, trace: pytest.LogCaptureFixture) -> None:
    provider = Provider(TOKEN)
    client = client_for(make_client, server, certificates, mechanism, provider)
    client.send(MESSAGE)
    client.send(MESSAGE)
    assert provider.calls == [False]
    client.close()
    client.send(MESSAGE)  # a new connection authenticates again
    assert provider.calls == [False, False]
    assert [m.auth_mechanism for m in server.wait_for_messages(3)] == [mechanism] * 3
    assert len(auth_lines(trace)) == 2


@pytest.mark.parametrize("mechanism", BEARER)
def test_a_refused_token_is_refreshed_once_and_retried(
        make_client: ClientFactory, server: DevServer, certificates: Certificates,
        mechanism: str, trace: pytest.LogCaptureFixture) -> None:
    provider = Provider(STALE, TOKEN)
    client = client_for(make_client, server, certificates, mechanism, provider)
    client.send(MESSAGE)
    assert provider.calls == [False, True]
    (received,) = server.wait_for_messages(1)
    assert (received.auth_mechanism, received.auth_user) == (mechanism, USER)
    assert auth_lines(trace) == [f"C: AUTH {mechanism} <redacted>", "C: <redacted>",
                                 f"C: AUTH {mechanism} <redacted>"]


@pytest.mark.parametrize("mechanism", BEARER)
def test_only_one_retry(make_client: ClientFactory, server: DevServer,
                        certificates: Certificates, mechanism: str,
                        trace: pytest.LogCaptureFixture) -> None:
    provider = Provider(STALE)
    client = client_for(make_client, server, certificates, mechanism, provider)
    with pytest.raises(OAuthAuthenticationError):
        client.send(MESSAGE)
    assert provider.calls == [False, True]
    assert [line for line in auth_lines(trace) if line.startswith("C: AUTH")] == [
        f"C: AUTH {mechanism} <redacted>"] * 2


def test_a_fixed_token_is_not_retried(make_client: ClientFactory, server: DevServer,
                                      certificates: Certificates,
                                      trace: pytest.LogCaptureFixture) -> None:
    with pytest.raises(OAuthAuthenticationError):
        client_for(make_client, server, certificates, "OAUTHBEARER", STALE).send(MESSAGE)
    assert len([line for line in auth_lines(trace) if line.startswith("C: AUTH")]) == 1


def test_a_token_about_to_expire_is_refreshed_before_auth(
        make_client: ClientFactory, server: DevServer, certificates: Certificates,
        trace: pytest.LogCaptureFixture) -> None:
    provider = Provider(OAuthToken.expiring_in(STALE, REFRESH_MARGIN / 2),
                        OAuthToken.expiring_in(TOKEN, 3600))
    client_for(make_client, server, certificates, "OAUTHBEARER", provider).send(MESSAGE)
    assert provider.calls == [False, True]
    assert auth_lines(trace) == ["C: AUTH OAUTHBEARER <redacted>"]  # one AUTH: no refusal


def test_a_provider_object_like_asposes(make_client: ClientFactory, server: DevServer,
                                        certificates: Certificates) -> None:
    class TokenProvider:
        def get_access_token(self, ignore_existing_token: bool = False) -> OAuthToken:
            return OAuthToken(TOKEN)

    client_for(make_client, server, certificates, "XOAUTH2", TokenProvider()).send(MESSAGE)
    assert server.wait_for_messages(1)[0].auth_mechanism == "XOAUTH2"


def test_a_failing_provider_sends_no_auth(make_client: ClientFactory, server: DevServer,
                                          certificates: Certificates,
                                          trace: pytest.LogCaptureFixture) -> None:
    def provider(ignore_existing_token: bool) -> str:
        raise TimeoutError("token endpoint did not answer")

    client = client_for(make_client, server, certificates, "OAUTHBEARER", provider)
    with pytest.raises(AuthenticationError, match="token provider failed") as caught:
        client.send(MESSAGE)
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert auth_lines(trace) == []


# -- long tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", BEARER)
def test_a_token_too_long_for_the_auth_line_follows_it(
        make_client: ClientFactory, server: DevServer, certificates: Certificates,
        mechanism: str, trace: pytest.LogCaptureFixture) -> None:
    """RFC 4954 section 4: an AUTH line may not exceed the command line limit (512 octets,
    which the development server enforces with 500); the response waits for the empty 334."""
    client = client_for(make_client, server, certificates, mechanism, LONG_TOKEN,
                        user="long@example.com")
    client.send(MESSAGE)
    assert server.wait_for_messages(1)[0].auth_user == "long@example.com"
    assert auth_lines(trace) == [f"C: AUTH {mechanism}", "C: <redacted>"]
