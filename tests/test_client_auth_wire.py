"""What goes on the wire during AUTH, and what the errors say, on both clients.

Initial responses (one round trip less where the mechanism allows it), the texts of the errors
(mechanism, user, host:port, the CLI option), a server that breaks the mechanism losing the
connection, a user's own mechanism plugged in end to end, and ``supported_authentication``
printing SASL names.
"""

from __future__ import annotations

import argparse
import base64
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mailwire import (
    AuthenticationError,
    SecurityOptions,
    SmtpKnownAuthenticationType,
    SmtpProtocolError,
    SmtpSecurityError,
)
from mailwire.auth import Mechanism, SaslFlow, SecretBytes, register
from mailwire.auth import mechanism as mechanism_module
from mailwire.cli.connection import add_connection_options
from mailwire.devserver import ALL_MECHANISMS, Certificates, DevServer, TlsMode
from tests.support.clients import ClientFactory
from tests.support.scripted import (
    Expect,
    ExpectClose,
    Reply,
    ScriptedServerFactory,
    goodbye,
    handshake,
    mail_transaction,
)

USER = "alice"
PASSWORD = "correct horse battery staple"
TOKEN = "ya29.bearer-token"
MESSAGE = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: wire\r\n\r\nhi\r\n"
Auth = SmtpKnownAuthenticationType
Servers = Callable[..., DevServer]

# The client's lines from AUTH to the verdict, for each mechanism (an initial response is shown
# as "<redacted>" on the AUTH line).
EXCHANGES = {
    "PLAIN": ["AUTH PLAIN <redacted>"],
    "LOGIN": ["AUTH LOGIN", "<redacted>", "<redacted>"],
    "CRAM-MD5": ["AUTH CRAM-MD5", "<redacted>"],
    "XOAUTH2": ["AUTH XOAUTH2 <redacted>"],
    "OAUTHBEARER": ["AUTH OAUTHBEARER <redacted>"],
    **{name: [f"AUTH {name} <redacted>", "<redacted>", "<redacted>"]
       for name in ALL_MECHANISMS if name.startswith("SCRAM")},
}


@pytest.fixture
def trace(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    return caplog


def client_lines(trace: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage()[3:] for record in trace.records
            if record.name == "mailwire.protocol" and record.getMessage().startswith("C: ")]


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


@pytest.mark.parametrize("mechanism", sorted(EXCHANGES))
def test_initial_responses_save_a_round_trip(
        make_client: ClientFactory, server_pool: Servers, certificates: Certificates,
        trace: pytest.LogCaptureFixture, mechanism: str) -> None:
    server = server_pool(tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD},
                         tokens={USER: TOKEN}, mechanisms=(mechanism,))
    secret: dict[str, Any] = ({"oauth_token": TOKEN} if "OAUTH" in mechanism
                              else {"password": PASSWORD})
    client = make_client("localhost", server.port, USER, security="ssl_implicit", timeout=5.0,
                         ssl_context=certificates.client_context(), **secret)
    client.connect()
    lines = client_lines(trace)
    start = lines.index(EXCHANGES[mechanism][0])
    assert lines[start:] == EXCHANGES[mechanism]
    assert client.connection_info is not None
    assert client.connection_info.auth_mechanism == mechanism


def test_plain_goes_in_one_line(make_client: ClientFactory,
                                scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(
        *handshake(["AUTH LOGIN PLAIN"]),
        Expect(f"AUTH PLAIN {b64(f'{chr(0)}{USER}{chr(0)}{PASSWORD}')}".encode()),
        Reply(235, "2.7.0 Authentication successful"),
        *goodbye(),
    )
    client = make_client(server.host, server.port, USER, PASSWORD, "none", timeout=5.0,
                         allow_plaintext_credentials=True)
    client.connect()
    client.quit()
    server.wait()


# -- error texts ------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN", "CRAM-MD5"])
def test_a_refusal_names_mechanism_user_and_server(
        make_client: ClientFactory, server_pool: Servers, certificates: Certificates,
        mechanism: str) -> None:
    server = server_pool(tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD},
                         mechanisms=(mechanism,))
    client = make_client("localhost", server.port, USER, "wrong password", "ssl_implicit",
                         timeout=5.0, ssl_context=certificates.client_context())
    with pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    assert str(caught.value) == (
        f"{mechanism} authentication failed for user 'alice' at localhost:{server.port}: "
        "535 5.7.8 Authentication credentials invalid")
    assert "wrong password" not in repr(caught.value)


def test_the_plaintext_refusal_names_user_server_and_both_options(
        make_client: ClientFactory, server_pool: Servers) -> None:
    server = server_pool(tls=TlsMode.NONE, credentials={USER: PASSWORD}, auth_require_tls=False,
                         certificates=None)
    client = make_client(server.host, server.port, USER, PASSWORD, SecurityOptions.NONE,
                         timeout=5.0)
    with pytest.raises(SmtpSecurityError) as caught:
        client.send(MESSAGE)
    text = str(caught.value)
    assert f"credentials of user 'alice' over an unencrypted connection to " \
           f"{server.host}:{server.port}" in text
    assert "allow_plaintext_credentials=True" in text
    assert "--allow-plaintext-credentials" in text
    assert PASSWORD not in text
    assert server.messages == []


def test_the_cli_option_named_exists() -> None:
    parser = argparse.ArgumentParser()
    add_connection_options(parser)
    assert parser.parse_args(["--allow-plaintext-credentials"]).allow_plaintext_credentials


# -- a server that breaks the mechanism -------------------------------------------------------


@pytest.mark.parametrize(("steps", "error", "message"), [
    # SCRAM's server must prove itself; success without its challenge is an impostor's.
    ([Expect(b"AUTH SCRAM-SHA-256 "), Reply(235, "2.7.0 ok")], AuthenticationError,
     "without its challenge"),
    ([Expect(b"AUTH SCRAM-SHA-256 "), Reply(334, "bm90IHNjcmFt"), Expect(b"*"),
      Reply(501, "5.7.0 cancelled")], AuthenticationError, "exchange failed"),
    ([Expect(b"AUTH SCRAM-SHA-256 "), Reply(334, "not base64!"), Expect(b"*"),
      Reply(501, "5.7.0 cancelled")], SmtpProtocolError, "not base64"),
], ids=["success without proof", "garbage challenge", "not base64"])
def test_a_server_that_breaks_the_mechanism_loses_the_connection(
        make_client: ClientFactory, scripted_server: ScriptedServerFactory,
        steps: list[Any], error: type[Exception], message: str) -> None:
    server = scripted_server(*handshake(["AUTH SCRAM-SHA-256"]), *steps, ExpectClose())
    client = make_client(server.host, server.port, USER, PASSWORD, "none", timeout=5.0,
                         allow_plaintext_credentials=True)
    with pytest.raises(error, match=message):
        client.send(MESSAGE)
    assert not client.is_connected
    server.wait()
    assert not any(chunk.upper().startswith(b"MAIL") for chunk in server.received)


# -- a user's own mechanism -------------------------------------------------------------------


class Hello(Mechanism):
    """Answers the server's challenge with ``<challenge>:<password>``."""

    sasl_name = "X-HELLO"

    def flow(self) -> SaslFlow:
        challenge = yield None
        if challenge is None:
            return
        yield SecretBytes(challenge + b":" + self.password_secret.utf8("password"))


@pytest.fixture
def hello() -> Iterator[type[Hello]]:
    saved = dict(mechanism_module._REGISTRY)
    register(Hello)
    try:
        yield Hello
    finally:
        mechanism_module._REGISTRY.clear()
        mechanism_module._REGISTRY.update(saved)


@pytest.mark.parametrize("allowed", [Auth.ALL, {"X-HELLO"}, "X-HELLO, PLAIN"],
                         ids=["ALL", "set", "str"])
def test_a_users_mechanism_end_to_end(make_client: ClientFactory,
                                      scripted_server: ScriptedServerFactory,
                                      hello: type[Hello], allowed: Any) -> None:
    server = scripted_server(
        *handshake(["AUTH PLAIN X-HELLO SCRAM-SHA-256"]),
        Expect(b"AUTH X-HELLO\r"),
        Reply(334, b64("nonce-1")),
        Expect(b64(f"nonce-1:{PASSWORD}").encode()),
        Reply(235, "2.7.0 welcome"),
        *mail_transaction(),
        *goodbye(),
    )
    client = make_client(server.host, server.port, USER, PASSWORD, "none", timeout=5.0,
                         allow_plaintext_credentials=True, allowed_authentication=allowed)
    client.send(MESSAGE)
    assert client.connection_info is not None
    assert client.connection_info.auth_mechanism == "X-HELLO"
    # It has no flag: supported_authentication lists the built-ins only.
    assert client.supported_authentication == Auth.PLAIN | Auth.SCRAM_SHA_256
    client.quit()
    server.wait()


def test_allowed_authentication_by_name(make_client: ClientFactory, server_pool: Servers,
                                        certificates: Certificates) -> None:
    server = server_pool(tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD})
    client = make_client("localhost", server.port, USER, PASSWORD, "ssl_implicit", timeout=5.0,
                         ssl_context=certificates.client_context(),
                         allowed_authentication={"cram-md5", "PLAIN"})
    client.send(MESSAGE)
    assert server.wait_for_messages(1)[0].auth_mechanism == "CRAM-MD5"


# -- printing what the server offers -----------------------------------------------------------


def test_supported_authentication_prints_names(make_client: ClientFactory,
                                               server_pool: Servers,
                                               certificates: Certificates) -> None:
    server = server_pool(tls=TlsMode.IMPLICIT, credentials={USER: PASSWORD},
                         tokens={USER: TOKEN})
    client = make_client("localhost", server.port, USER, PASSWORD, "ssl_implicit", timeout=5.0,
                         ssl_context=certificates.client_context())
    offered = client.supported_authentication
    assert offered == Auth.ALL & ~(Auth.EXTERNAL | Auth.NTLM | Auth.GSSAPI)
    assert str(offered) == ("OAUTHBEARER, XOAUTH2, SCRAM-SHA-512-PLUS, SCRAM-SHA-256-PLUS, "
                            "SCRAM-SHA-1-PLUS, SCRAM-SHA-512, SCRAM-SHA-256, SCRAM-SHA-1, "
                            "CRAM-MD5, PLAIN, LOGIN")
    assert repr(offered) == f"<SmtpKnownAuthenticationType: {offered}>"
