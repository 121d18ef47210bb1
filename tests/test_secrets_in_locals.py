"""No secret in what error reporters record: the local variables of every frame (SECURITY.md,
"Secrets in logs, reprs and errors"), on both clients.

For every mechanism that carries a secret, a timeout is raised into the AUTH flow at each of
its steps in turn (the AUTH line, each challenge, each response, the verdict), and the failure
is searched as ``tests/support/exposure.py`` describes: every frame of mailwire's code, the
values' reprs, containers, dataclass fields, the attributes of mailwire's objects and the
locals of the suspended mechanism. The same for a refused password or token, a refreshed token,
and a password that is not UTF-8. ``repr(Credentials)`` and ``repr(_session_settings())`` show
no secret either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mailwire import (
    AuthenticationError,
    SecurityOptions,
    SmtpClient,
    SmtpError,
    SmtpKnownAuthenticationType,
    SmtpTimeoutError,
    SmtpUsageError,
)
from mailwire.auth import Credentials, OAuthToken, Secret, SecretBytes
from mailwire.devserver import ALL_MECHANISMS, Certificates, DevServer, TlsMode
from tests.support.clients import Client, ClientFactory
from tests.support.exposure import (
    AuthFault,
    FailingAsyncConnection,
    FailingSyncConnection,
    find,
    forms_of,
)

USER = "alice@example.com"
PASSWORD = "Pa55-in-the-frames-Tr0ub4dor"
TOKEN = "ya29.token-in-the-frames"
WRONG = "Wr0ng-in-the-frames-Tr0ub4dor"
MESSAGE = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: s\r\n\r\nbody\r\n"
Auth = SmtpKnownAuthenticationType
WITH_SECRETS = [name for name in ALL_MECHANISMS if name != "EXTERNAL"]


def payloads(port: int) -> list[bytes]:
    """The secrets, and the AUTH payloads that hold them, as they could show."""
    return forms_of(
        PASSWORD, TOKEN, WRONG,
        f"\0{USER}\0{PASSWORD}", f"\0{USER}\0{WRONG}",
        f"user={USER}\x01auth=Bearer {TOKEN}\x01\x01",
        f"n,a={USER},\x01host=localhost\x01port={port}\x01auth=Bearer {TOKEN}\x01\x01",
    )


@pytest.fixture
def server(server_pool: Callable[..., DevServer]) -> DevServer:
    return server_pool(tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD},
                       tokens={USER: TOKEN})


@pytest.fixture(autouse=True)
def quiet_trace() -> Iterator[None]:
    """The trace off, so that nothing but the code under test holds the secrets' forms."""
    logger = logging.getLogger("mailwire.protocol")
    saved = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(saved)


def client_for(make_client: ClientFactory, server: DevServer, certificates: Certificates,
               mechanism: str, *, secret: str | None = None, **options: Any) -> Client:
    token = mechanism in ("XOAUTH2", "OAUTHBEARER")
    credentials = {"oauth_token": secret or TOKEN} if token else {"password": secret or PASSWORD}
    options = {**credentials, **options}
    return make_client("localhost", server.port, USER, security=SecurityOptions.SSL_IMPLICIT,
                       timeout=5.0, ssl_context=certificates.client_context(),
                       allowed_authentication=Auth[mechanism.replace("-", "_")], **options)


def fail_at(client: Client, at: int) -> AuthFault:
    """Make the client's connection raise a timeout at the ``at``-th AUTH read or write."""
    fault = AuthFault(at)
    inner: Any = client.inner  # type: ignore[attr-defined]
    kind = FailingSyncConnection if isinstance(inner, SmtpClient) else FailingAsyncConnection
    inner.__dict__["_connection"] = kind(fault)
    return fault


@pytest.mark.parametrize("mechanism", WITH_SECRETS)
def test_a_failure_at_every_step_of_auth_keeps_no_secret_in_frames(
        make_client: ClientFactory, server: DevServer, certificates: Certificates,
        mechanism: str) -> None:
    steps = 0
    for at in range(1, 20):
        client = client_for(make_client, server, certificates, mechanism)
        fault = fail_at(client, at)
        try:
            client.send(MESSAGE)
        except SmtpTimeoutError as error:
            assert fault.fired
            assert find(error, payloads(server.port)) == [], f"step {at}"
            steps += 1
            continue
        finally:
            client.close()
        assert not fault.fired
        break
    # AUTH and its verdict at least; SCRAM has three round trips, LOGIN three.
    assert steps >= (6 if mechanism.startswith(("SCRAM", "LOGIN")) else 2)


@pytest.mark.parametrize("mechanism", WITH_SECRETS)
def test_a_refusal_keeps_no_secret_in_frames(
        make_client: ClientFactory, server: DevServer, certificates: Certificates,
        mechanism: str) -> None:
    client = client_for(make_client, server, certificates, mechanism, secret=WRONG)
    with pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    assert caught.value.code == 535
    assert find(caught.value, payloads(server.port)) == []


def test_a_refreshed_token_keeps_no_secret_in_frames(
        make_client: ClientFactory, server: DevServer, certificates: Certificates) -> None:
    tokens = [WRONG, WRONG]

    def provider(ignore_existing_token: bool) -> OAuthToken:
        return OAuthToken(tokens.pop(0))

    client = client_for(make_client, server, certificates, "OAUTHBEARER", oauth_token=provider)
    with pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    assert tokens == []  # asked twice: before AUTH and after the refusal
    assert find(caught.value, payloads(server.port)) == []


@pytest.mark.parametrize("where", ["password", "oauth_token"])
def test_a_secret_that_is_not_utf8_is_a_usage_error_that_does_not_show_it(
        make_client: ClientFactory, server: DevServer, certificates: Certificates,
        where: str) -> None:
    """As ``os.environ`` gives bytes that are not UTF-8: with surrogate escapes."""
    undecodable = PASSWORD + "\udcff\udcfe"
    mechanism = "PLAIN" if where == "password" else "XOAUTH2"
    client = client_for(make_client, server, certificates, mechanism, **{where: undecodable})
    with pytest.raises(SmtpUsageError, match="not valid UTF-8") as caught:
        client.send(MESSAGE)
    assert not isinstance(caught.value, UnicodeError)
    assert find(caught.value, forms_of(PASSWORD)) == []
    assert server.messages == []


def test_reprs_show_no_secret() -> None:
    client = SmtpClient("smtp.example.com", 587, USER, PASSWORD, oauth_token=TOKEN)
    settings = client._session_settings()
    assert settings.credentials is not None
    shown = "\n".join([repr(settings), str(settings), repr(settings.credentials),
                       repr(Credentials(USER, PASSWORD, TOKEN))])
    assert USER in shown
    for form in forms_of(PASSWORD, TOKEN):
        assert form.decode() not in shown
    assert "<redacted>" in repr(settings.credentials)


# -- the search is not blind ------------------------------------------------------------------


def raise_with_a_secret_in_a_local() -> None:
    payload = f"\0{USER}\0{PASSWORD}".encode()
    raise SmtpError(f"failed with {len(payload)} bytes")


def test_the_search_finds_a_secret_in_a_local() -> None:
    with pytest.raises(SmtpError) as caught:
        raise_with_a_secret_in_a_local()
    here = (__file__,)
    assert find(caught.value, payloads(25), code_under=here) != []


def test_the_search_finds_an_unredacted_payload(
        make_client: ClientFactory, server: DevServer, certificates: Certificates,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the defence taken away (``SecretBytes`` shown as plain bytes), the same failure as
    above is caught."""
    monkeypatch.setattr(SecretBytes, "__repr__", bytes.__repr__)
    client = client_for(make_client, server, certificates, "PLAIN")
    fail_at(client, 2)  # the read of the verdict: the AUTH line is in the frames
    with pytest.raises(SmtpTimeoutError) as caught:
        client.send(MESSAGE)
    assert find(caught.value, payloads(server.port)) != []


def test_the_search_looks_inside_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Secret, "__repr__", lambda self: repr(self.reveal()))
    with pytest.raises(SmtpError) as caught:
        _hold(Credentials(USER, PASSWORD))
    assert find(caught.value, forms_of(PASSWORD), code_under=(__file__,)) != []


def _hold(credentials: Credentials) -> None:
    raise SmtpError(f"holding {type(credentials).__name__}")
