"""SASL mechanisms driven by hand against known vectors, and the choice of mechanism."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from scramp import ScramException, ScramMechanism

from mailwire.auth import (
    AuthContext,
    Credentials,
    SecretBytes,
    SmtpKnownAuthenticationType,
    choose,
    registered,
    supported_flags,
)
from mailwire.auth.cram_md5 import CramMd5
from mailwire.auth.external import External
from mailwire.auth.login import Login
from mailwire.auth.mechanism import SaslFlow
from mailwire.auth.plain import Plain
from mailwire.auth.scram import ScramSha1, ScramSha256
from mailwire.auth.xoauth2 import XOAuth2
from mailwire.errors import AuthenticationError, SmtpUsageError

Auth = SmtpKnownAuthenticationType
PASSWORD = Credentials("tim", "tanstaaftanstaaf")


def finished(flow: SaslFlow, value: bytes | None = None) -> bool:
    """True when the flow ends on ``send(value)``."""
    try:
        flow.send(value)
    except StopIteration:
        return True
    return False


# -- PLAIN -----------------------------------------------------------------------------------


def test_plain_initial_response() -> None:
    flow = Plain(PASSWORD).flow()
    assert next(flow) == b"\0tim\0tanstaaftanstaaf"
    assert finished(flow)


def test_plain_utf8_credentials() -> None:
    flow = Plain(Credentials("josé", "pässwörd")).flow()
    assert next(flow) == "\0josé\0pässwörd".encode()


def test_plain_wire_form() -> None:
    initial = next(Plain(PASSWORD).flow())
    assert initial is not None
    assert base64.b64encode(initial) == b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm"


@pytest.mark.parametrize("credentials", [Credentials("a\0b", "pw"), Credentials("user", "p\0w")])
def test_plain_rejects_nul(credentials: Credentials) -> None:
    with pytest.raises(SmtpUsageError):
        next(Plain(credentials).flow())


def test_plain_without_password() -> None:
    with pytest.raises(AuthenticationError, match="password"):
        next(Plain(Credentials("tim")).flow())


# -- LOGIN -----------------------------------------------------------------------------------


def test_login_sequence() -> None:
    flow = Login(PASSWORD).flow()
    assert next(flow) is None  # no initial response
    assert flow.send(b"Username:") == b"tim"
    assert flow.send(b"Password:") == b"tanstaaftanstaaf"
    assert finished(flow)


def test_login_ignores_prompt_text() -> None:
    flow = Login(PASSWORD).flow()
    next(flow)
    assert flow.send(b"") == b"tim"
    assert flow.send(b"anything") == b"tanstaaftanstaaf"


def test_login_success_early_ends_the_flow() -> None:
    flow = Login(PASSWORD).flow()
    next(flow)
    assert finished(flow, None)
    flow = Login(PASSWORD).flow()
    next(flow)
    flow.send(b"Username:")
    assert finished(flow, None)


# -- CRAM-MD5 (RFC 2195) ---------------------------------------------------------------------


def test_cram_md5_rfc2195_example() -> None:
    flow = CramMd5(PASSWORD).flow()
    assert next(flow) is None
    response = flow.send(b"<1896.697170952@postoffice.reston.mci.net>")
    assert response == b"tim b913a602c7eda7a495b4e6e7334d3890"
    assert finished(flow)


def test_cram_md5_wire_form_from_the_rfc() -> None:
    # The RFC shows the challenge and response as base64 on the wire.
    challenge = base64.b64decode("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
    flow = CramMd5(PASSWORD).flow()
    next(flow)
    response = flow.send(challenge)
    assert response is not None
    assert base64.b64encode(response) == b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"


def test_cram_md5_matches_hmac() -> None:
    flow = CramMd5(Credentials("user", "secret")).flow()
    next(flow)
    digest = hmac.new(b"secret", b"<abc@host>", hashlib.md5).hexdigest()
    assert flow.send(b"<abc@host>") == f"user {digest}".encode()


# -- XOAUTH2 ---------------------------------------------------------------------------------

TOKEN = Credentials(
    "someuser@example.com", oauth_token="ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
)


def test_xoauth2_initial_response_format() -> None:
    flow = XOAuth2(TOKEN).flow()
    assert next(flow) == (
        b"user=someuser@example.com\x01auth=Bearer "
        b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
    )
    assert finished(flow)


def test_xoauth2_error_path() -> None:
    flow = XOAuth2(TOKEN).flow()
    next(flow)
    error = b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'
    assert flow.send(error) == b""  # the empty answer that makes the server send its error
    assert finished(flow)


@pytest.mark.parametrize(
    "credentials",
    [Credentials("a\x01b", oauth_token="t"), Credentials("user", oauth_token="t\x01")],
)
def test_xoauth2_rejects_separator(credentials: Credentials) -> None:
    with pytest.raises(SmtpUsageError):
        next(XOAuth2(credentials).flow())


# -- SCRAM against a scramp server -----------------------------------------------------------

SCRAM_CASES = [(ScramSha256, "SCRAM-SHA-256"), (ScramSha1, "SCRAM-SHA-1")]


def scram_server(name: str, password: str, *, username: str = "user") -> Any:
    mechanism = ScramMechanism(name)
    info = mechanism.make_auth_info(password, iteration_count=4096)

    def auth_fn(user: str) -> Any:
        assert user == username
        return info

    return mechanism.make_server(auth_fn)


@pytest.mark.parametrize(("mechanism", "name"), SCRAM_CASES)
def test_scram_full_exchange(mechanism: type[ScramSha256], name: str) -> None:
    server = scram_server(name, "pencil")
    flow = mechanism(Credentials("user", "pencil")).flow()
    client_first = next(flow)
    assert client_first is not None
    assert client_first.startswith(b"n,,n=user,r=")
    server.set_client_first(client_first.decode())
    client_final = flow.send(server.get_server_first().encode())
    assert client_final is not None
    server.set_client_final(client_final.decode())  # the server checks our proof
    assert flow.send(server.get_server_final().encode()) == b""
    assert finished(flow)


@pytest.mark.parametrize(("mechanism", "name"), SCRAM_CASES)
def test_scram_username_with_special_characters(mechanism: type[ScramSha256], name: str) -> None:
    server = scram_server(name, "pw", username="a,b=c")
    flow = mechanism(Credentials("a,b=c", "pw")).flow()
    client_first = next(flow)
    assert client_first is not None
    assert b"n=a=2Cb=3Dc," in client_first
    server.set_client_first(client_first.decode())
    client_final = flow.send(server.get_server_first().encode())
    assert client_final is not None
    server.set_client_final(client_final.decode())
    assert flow.send(server.get_server_final().encode()) == b""


@pytest.mark.parametrize(("mechanism", "name"), SCRAM_CASES)
def test_scram_wrong_password_is_refused_by_the_server(
    mechanism: type[ScramSha256], name: str
) -> None:
    server = scram_server(name, "right")
    flow = mechanism(Credentials("user", "wrong")).flow()
    client_first = next(flow)
    assert client_first is not None
    server.set_client_first(client_first.decode())
    client_final = flow.send(server.get_server_first().encode())
    assert client_final is not None
    with pytest.raises(ScramException):
        server.set_client_final(client_final.decode())


def _exchange_until_server_final(mechanism: type[ScramSha256], name: str) -> tuple[SaslFlow, str]:
    server = scram_server(name, "pencil")
    flow = mechanism(Credentials("user", "pencil")).flow()
    client_first = next(flow)
    assert client_first is not None
    server.set_client_first(client_first.decode())
    client_final = flow.send(server.get_server_first().encode())
    assert client_final is not None
    server.set_client_final(client_final.decode())
    return flow, server.get_server_final()


@pytest.mark.parametrize(("mechanism", "name"), SCRAM_CASES)
def test_scram_rejects_a_bad_server_signature(mechanism: type[ScramSha256], name: str) -> None:
    flow, server_final = _exchange_until_server_final(mechanism, name)
    signature = base64.b64decode(server_final.removeprefix("v="))
    forged = "v=" + base64.b64encode(bytes([signature[0] ^ 1]) + signature[1:]).decode()
    with pytest.raises(AuthenticationError):
        flow.send(forged.encode())


@pytest.mark.parametrize(
    "server_final", [b"e=invalid-proof", b"garbage", b"", b"v=", b"\xff\xfe"]
)
def test_scram_rejects_malformed_server_final(server_final: bytes) -> None:
    flow, _ = _exchange_until_server_final(ScramSha256, "SCRAM-SHA-256")
    with pytest.raises(AuthenticationError):
        flow.send(server_final)


@pytest.mark.parametrize(("mechanism", "name"), SCRAM_CASES)
def test_scram_success_without_server_final_fails(
    mechanism: type[ScramSha256], name: str
) -> None:
    flow, _ = _exchange_until_server_final(mechanism, name)
    with pytest.raises(AuthenticationError, match="without proving"):
        flow.send(None)  # the server said 235 without sending its signature


def test_scram_success_before_the_challenge_fails() -> None:
    flow = ScramSha256(Credentials("user", "pencil")).flow()
    next(flow)
    with pytest.raises(AuthenticationError):
        flow.send(None)


@pytest.mark.parametrize(
    "server_first",
    [b"garbage", b"r=not-our-nonce,s=c2FsdA==,i=4096", b"\xff\xfe", b""],
)
def test_scram_rejects_a_bad_server_first(server_first: bytes) -> None:
    flow = ScramSha256(Credentials("user", "pencil")).flow()
    next(flow)
    with pytest.raises(AuthenticationError):
        flow.send(server_first)


# -- choose ----------------------------------------------------------------------------------

ALL_OFFERED = ("LOGIN", "PLAIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "XOAUTH2")
PASSWORD_ORDER = ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"]


BUILTIN = (*ALL_OFFERED, "SCRAM-SHA-512", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS",
           "SCRAM-SHA-512-PLUS", "OAUTHBEARER", "EXTERNAL", "NTLM", "GSSAPI")


def test_registry_holds_every_builtin() -> None:
    assert set(registered()) == set(BUILTIN)


def test_choose_strongest_for_a_password() -> None:
    offered = list(PASSWORD_ORDER)
    while offered:
        chosen = choose(tuple(offered), Auth.ALL, PASSWORD)
        assert chosen.name() == offered[0]
        offered.pop(0)


@pytest.mark.parametrize("strongest", PASSWORD_ORDER)
def test_choose_is_independent_of_the_servers_order(strongest: str) -> None:
    index = PASSWORD_ORDER.index(strongest)
    offered = tuple(reversed(PASSWORD_ORDER[index:]))
    assert choose(offered, Auth.ALL, PASSWORD).name() == strongest


def test_choose_never_picks_xoauth2_without_a_token() -> None:
    assert choose(ALL_OFFERED, Auth.ALL, PASSWORD).name() == "SCRAM-SHA-256"
    with pytest.raises(AuthenticationError):
        choose(("XOAUTH2",), Auth.ALL, PASSWORD)


def test_choose_xoauth2_with_a_token() -> None:
    assert choose(ALL_OFFERED, Auth.ALL, TOKEN) is XOAuth2
    assert choose(("XOAUTH2",), Auth.XOAUTH2, TOKEN) is XOAuth2


def test_token_only_credentials_need_xoauth2() -> None:
    with pytest.raises(AuthenticationError, match="OAuth token"):
        choose(("PLAIN", "LOGIN"), Auth.ALL, TOKEN)


def test_choose_respects_the_allowed_flags() -> None:
    assert choose(ALL_OFFERED, Auth.PLAIN | Auth.LOGIN, PASSWORD) is Plain
    assert choose(ALL_OFFERED, Auth.LOGIN, PASSWORD) is Login
    assert choose(ALL_OFFERED, Auth.ALL & ~Auth.SCRAM_SHA_256, PASSWORD) is ScramSha1


def test_choose_raises_naming_both_sets() -> None:
    with pytest.raises(AuthenticationError) as caught:
        choose(("GSSAPI", "NTLM"), Auth.PLAIN | Auth.CRAM_MD5, PASSWORD)
    message = str(caught.value)
    assert "GSSAPI" in message
    assert "NTLM" in message
    assert "PLAIN" in message
    assert "CRAM-MD5" in message
    assert "LOGIN" not in message


def test_choose_raises_when_the_server_offers_nothing() -> None:
    with pytest.raises(AuthenticationError, match="none"):
        choose((), Auth.ALL, PASSWORD)


def test_choose_raises_when_nothing_is_allowed() -> None:
    with pytest.raises(AuthenticationError):
        choose(ALL_OFFERED, Auth.NONE, PASSWORD)


def test_supported_flags() -> None:
    assert supported_flags(("PLAIN", "DIGEST-MD5", "SCRAM-SHA-1")) == Auth.PLAIN | Auth.SCRAM_SHA_1
    assert supported_flags(()) == Auth.NONE
    assert supported_flags(BUILTIN) == Auth.ALL


def test_mechanism_names() -> None:
    assert Auth.CRAM_MD5.mechanism_name == "CRAM-MD5"
    assert Auth.SCRAM_SHA_256.mechanism_name == "SCRAM-SHA-256"
    assert CramMd5.name() == "CRAM-MD5"


# -- EXTERNAL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("username", "initial"), [("", b""), ("alice@example.com",
                                                                 b"alice@example.com")])
def test_external_sends_the_authorization_identity(username: str, initial: bytes) -> None:
    flow = External(Credentials(username)).flow()
    assert next(flow) == initial  # empty: "AUTH EXTERNAL =", the identity from the certificate
    assert finished(flow)


def test_external_needs_tls_with_a_client_certificate() -> None:
    assert External.usable_with(Credentials(""))
    assert External.usable_on(AuthContext(tls=True, client_certificate=True))
    assert not External.usable_on(AuthContext(tls=True, client_certificate=False))
    assert not External.usable_on(AuthContext(tls=False, client_certificate=True))


# -- what carries a secret is redacted --------------------------------------------------------


@pytest.mark.parametrize("mechanism", [Plain, XOAuth2])
def test_initial_responses_are_secret(mechanism: type[Plain]) -> None:
    credentials = Credentials("tim", "tanstaaftanstaaf", "ya29.token")
    first = next(mechanism(credentials).flow())
    assert isinstance(first, SecretBytes)
    assert "tanstaaf" not in repr(first) and "ya29" not in str(first)


def test_login_and_cram_md5_responses_are_secret() -> None:
    login = Login(PASSWORD).flow()
    next(login)
    assert isinstance(login.send(b"Username:"), SecretBytes)
    assert isinstance(login.send(b"Password:"), SecretBytes)
    cram = CramMd5(PASSWORD).flow()
    next(cram)
    assert isinstance(cram.send(b"<1@host>"), SecretBytes)
