"""OAUTHBEARER and XOAUTH2 driven by hand, the server's OAuth error, and token providers."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from mailwire.auth import (
    AuthContext,
    Credentials,
    OAuthAuthenticationError,
    OAuthErrorReply,
    OAuthToken,
    Secret,
)
from mailwire.auth.oauthbearer import OAuthBearer
from mailwire.auth.tokens import REFRESH_MARGIN, access_token
from mailwire.auth.xoauth2 import XOAuth2
from mailwire.errors import AuthenticationError, SmtpUsageError
from mailwire.protocol.replies import Reply

RFC_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
RFC_ERROR = (b'{"status":"invalid_token","scope":"example_scope",'
             b'"openid-configuration":"https://example.com/.well-known/openid-configuration"}')


def bearer(user: str = "user@example.com", token: str = RFC_TOKEN,
           context: AuthContext | None = None) -> OAuthBearer:
    return OAuthBearer(Credentials(user, oauth_token=token), context)


# -- OAUTHBEARER (RFC 7628) ---------------------------------------------------------------------


def test_oauthbearer_initial_response_is_the_rfcs_example() -> None:
    """RFC 7628 section 4.1."""
    flow = bearer(context=AuthContext("server.example.com", 143)).flow()
    assert next(flow) == (b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
                          b"auth=Bearer " + RFC_TOKEN.encode() + b"\x01\x01")
    with pytest.raises(StopIteration):
        flow.send(None)


def test_oauthbearer_escapes_the_authorization_identity() -> None:
    first = next(bearer("a,b=c", "t").flow())
    assert first is not None
    assert first.startswith(b"n,a=a=2Cb=3Dc,\x01")


def test_oauthbearer_without_a_user_or_an_address() -> None:
    assert next(bearer("", "t").flow()) == b"n,,\x01auth=Bearer t\x01\x01"


def test_oauthbearer_answers_the_error_with_0x01() -> None:
    """RFC 7628 section 3.2.3: the client's only answer to an error challenge is %x01."""
    mechanism = bearer()
    flow = mechanism.flow()
    next(flow)
    assert flow.send(RFC_ERROR) == b"\x01"
    with pytest.raises(StopIteration):
        flow.send(None)
    assert mechanism.oauth_error == OAuthErrorReply(
        status="invalid_token", scope="example_scope",
        openid_configuration="https://example.com/.well-known/openid-configuration")


@pytest.mark.parametrize("credentials", [
    Credentials("a\x01b", oauth_token="t"), Credentials("user", oauth_token="t\x01")])
def test_oauthbearer_refuses_the_separator(credentials: Credentials) -> None:
    with pytest.raises(SmtpUsageError, match="x01"):
        next(OAuthBearer(credentials).flow())


def test_the_initial_response_is_secret() -> None:
    first = next(bearer().flow())
    assert first is not None
    for shown in (repr(first), str(first)):
        assert RFC_TOKEN not in shown and "redacted" in shown


# -- XOAUTH2 -------------------------------------------------------------------------------------


def test_xoauth2_keeps_the_servers_error() -> None:
    mechanism = XOAuth2(Credentials("u", oauth_token="t"))
    flow = mechanism.flow()
    next(flow)
    assert flow.send(b'{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}'
                     ) == b""
    assert mechanism.oauth_error == OAuthErrorReply(status="401", scope="https://mail.google.com/",
                                                    schemes="Bearer")


# -- the server's error --------------------------------------------------------------------------


@pytest.mark.parametrize(("challenge", "described"), [
    (RFC_ERROR, "status=invalid_token, scope=example_scope, openid-configuration=https://"),
    (b"not json", "error=not json"),
    (b"[1, 2]", "error=[1, 2]"),
    (b'{"status": "bad\\u001b[31m\\r\\n"}', "status=bad\\x1b[31m\\r\\n"),
    (b"{}", "no details"),
    (b"\xff\xfe", "error=\ufffd\ufffd"),
])
def test_the_error_is_parsed_and_shown_safely(challenge: bytes, described: str) -> None:
    shown = OAuthErrorReply.parse(challenge).describe()
    assert shown.startswith(described)
    assert all(c.isprintable() for c in shown)


def test_a_long_error_is_cut() -> None:
    assert len(OAuthErrorReply.parse(b'{"scope": "' + b"x" * 5000 + b'"}').describe()) < 300


def test_the_oauth_error_is_an_authentication_error() -> None:
    reply = Reply(535, ["5.7.8 Authentication credentials invalid"])
    error = OAuthAuthenticationError("OAUTHBEARER authentication failed", reply=reply,
                                     oauth_error=OAuthErrorReply.parse(RFC_ERROR))
    assert isinstance(error, AuthenticationError)
    assert (error.code, error.status, error.scope) == (535, "invalid_token", "example_scope")
    assert error.openid_configuration == "https://example.com/.well-known/openid-configuration"
    assert "status=invalid_token" in str(error) and "535 5.7.8" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.status, copy.code, str(copy)) == (error.status, 535, str(error))


# -- tokens and providers ------------------------------------------------------------------------


class Provider:
    """Aspose's ITokenProvider shape: ``get_access_token(ignore_existing_token)``."""

    def __init__(self, *tokens: OAuthToken | str) -> None:
        self.tokens = list(tokens)
        self.calls: list[bool] = []

    def get_access_token(self, ignore_existing_token: bool = False) -> OAuthToken | str:
        self.calls.append(ignore_existing_token)
        return self.tokens.pop(0)


def test_a_fixed_token() -> None:
    for source in ("t", Secret("t"), OAuthToken("t")):
        assert access_token(source).reveal() == "t"


def test_a_provider_object_and_a_callable() -> None:
    provider = Provider("one")
    assert access_token(provider).reveal() == "one"
    assert provider.calls == [False]
    calls: list[bool] = []

    def callable_provider(ignore_existing_token: bool) -> str:
        calls.append(ignore_existing_token)
        return "two"

    assert access_token(callable_provider, refresh=True).reveal() == "two"
    assert calls == [True]


def test_a_token_about_to_expire_is_refreshed_first() -> None:
    soon = OAuthToken.expiring_in("stale", REFRESH_MARGIN / 2)
    provider = Provider(soon, OAuthToken.expiring_in("fresh", 3600))
    assert access_token(provider).reveal() == "fresh"
    assert provider.calls == [False, True]


def test_a_token_with_time_left_is_used_as_it_is() -> None:
    provider = Provider(OAuthToken("fine", datetime.now() + timedelta(hours=1)))  # naive: local
    assert access_token(provider).reveal() == "fine"
    assert provider.calls == [False]


def test_a_provider_that_keeps_handing_out_a_short_token_is_asked_twice_only() -> None:
    provider = Provider(OAuthToken.expiring_in("a", 5), OAuthToken.expiring_in("b", 5))
    assert access_token(provider).reveal() == "b"
    assert provider.calls == [False, True]


def test_expiry() -> None:
    assert OAuthToken("t", datetime.now(UTC) - timedelta(seconds=1)).expired
    assert not OAuthToken("t", datetime.now(UTC) + timedelta(seconds=30)).expired
    assert not OAuthToken("t").expired


def test_a_failing_provider_is_an_authentication_error() -> None:
    def broken(ignore_existing_token: bool) -> str:
        raise OSError("the issuer is unreachable")

    with pytest.raises(AuthenticationError, match=r"token provider failed \(OSError\)") as caught:
        access_token(broken)
    assert isinstance(caught.value.__cause__, OSError)


def test_a_provider_must_give_a_token() -> None:
    with pytest.raises(SmtpUsageError, match="returned int"):
        access_token(lambda ignore_existing_token: 42)  # type: ignore[arg-type,return-value]


def test_oauth_token_repr_hides_the_token() -> None:
    token = OAuthToken("ya29.secret-token", datetime(2030, 1, 1, tzinfo=UTC))
    assert "ya29" not in repr(token) and "2030-01-01" in repr(token)
    assert token.token == "ya29.secret-token"


def test_credentials_keep_a_provider_and_show_only_its_type() -> None:
    provider = Provider("t")
    credentials = Credentials("alice", oauth_token=provider)
    assert credentials.token_from_provider
    assert "Provider" in repr(credentials)
    assert provider.calls == []  # not asked until AUTH
    with pytest.raises(SmtpUsageError, match="token provider"):
        Credentials("alice", oauth_token=42)  # type: ignore[arg-type]
