"""SmtpClient authentication against a real server that implements every mechanism.

Each mechanism succeeds (the server records which one was used) and fails with 535 without the
client falling back to another one; the strongest common mechanism is chosen,
``allowed_authentication`` restricts the choice, and credentials never go over plaintext unless
the caller opts in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from mailwire import (
    AuthenticationError,
    SecurityOptions,
    SmtpClient,
    SmtpKnownAuthenticationType,
    SmtpSecurityError,
)
from mailwire.devserver import ALL_MECHANISMS, Certificates, DevServer, TlsMode
from tests.support.scripted import (
    Expect,
    Reply,
    ScriptedServerFactory,
    goodbye,
    handshake,
)

USER = "alice"
PASSWORD = "correct horse battery staple"
TOKEN = "ya29.a0-valid-bearer-token"
CREDENTIALS = {USER: PASSWORD}
TOKENS = {USER: TOKEN}
MESSAGE = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: auth\r\n\r\nhi\r\n"
Auth = SmtpKnownAuthenticationType
FLAGS = {flag.mechanism_name: flag for flag in Auth if flag not in (Auth.NONE, Auth.ALL)}
TOKEN_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
# Password mechanisms from the weakest to the strongest (README "Authentication").
STRENGTH_ORDER = ["LOGIN", "PLAIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512",
                  "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS"]
Servers = Callable[..., DevServer]


@pytest.fixture
def servers(server_pool: Servers) -> Servers:
    """``servers(**DevServer options)``: implicit-TLS servers with AUTH, one per configuration,
    emptied of messages each time one is handed out."""

    def get(**options: Any) -> DevServer:
        options.setdefault("tls", TlsMode.IMPLICIT)
        options.setdefault("credentials", CREDENTIALS)
        options.setdefault("tokens", TOKENS)
        return server_pool(**options)

    return get


def tls_client(server: DevServer, certificates: Certificates, **options: Any) -> SmtpClient:
    options.setdefault("username", USER)
    return SmtpClient(
        "localhost",
        server.port,
        security=SecurityOptions.SSL_IMPLICIT,
        timeout=5.0,
        ssl_context=certificates.client_context(),
        **options,
    )


def secret_for(mechanism: str, good: bool) -> dict[str, str]:
    if mechanism in TOKEN_MECHANISMS:
        return {"oauth_token": TOKEN if good else "ya29.wrong-token"}
    return {"password": PASSWORD if good else "wrong password"}


def auth_commands(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "mailwire.protocol" and record.getMessage().startswith("C: AUTH ")
    ]


@pytest.fixture
def protocol_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    return caplog


# -- each mechanism ----------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ALL_MECHANISMS)
def test_each_mechanism_authenticates(
    servers: Servers, certificates: Certificates, mechanism: str
) -> None:
    server = servers(mechanisms=(mechanism,))
    with tls_client(server, certificates, **secret_for(mechanism, good=True)) as client:
        assert client.supported_authentication == FLAGS[mechanism]
        client.send(MESSAGE)
        info = client.connection_info
        assert info is not None
        assert info.auth_mechanism == mechanism
    (received,) = server.wait_for_messages(1)
    assert received.auth_mechanism == mechanism
    assert received.auth_user == USER


@pytest.mark.parametrize("mechanism", ALL_MECHANISMS)
def test_bad_credentials_fail_with_535_and_no_other_mechanism_is_tried(
    servers: Servers,
    certificates: Certificates,
    protocol_log: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    # The server offers everything; the client may use the mechanism under test and every
    # weaker one, so a client that cycled on 535 would have somewhere to go.
    server = servers()
    if mechanism in TOKEN_MECHANISMS:
        allowed = FLAGS[mechanism]
        for name in STRENGTH_ORDER:
            allowed |= FLAGS[name]
        # A correct password too: falling back to SCRAM after the 535 would even succeed.
        secrets = {"oauth_token": "ya29.wrong-token", "password": PASSWORD}
    else:
        weaker = STRENGTH_ORDER[: STRENGTH_ORDER.index(mechanism) + 1]
        allowed = Auth.NONE
        for name in weaker:
            allowed |= FLAGS[name]
        secrets = secret_for(mechanism, good=False)
    client = tls_client(server, certificates, allowed_authentication=allowed, **secrets)
    with client, pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)

    assert caught.value.code == 535
    commands = auth_commands(protocol_log)
    assert len(commands) == 1, commands
    assert commands[0].startswith(f"C: AUTH {mechanism}")
    assert server.messages == []


def test_535_stops_server_side_view(scripted_server: ScriptedServerFactory) -> None:
    """The server sees one AUTH, then QUIT: no second mechanism, no MAIL."""
    server = scripted_server(
        *handshake(["AUTH PLAIN LOGIN"]),
        Expect(b"AUTH PLAIN "),
        Reply(535, "5.7.8 Authentication credentials invalid"),
        *goodbye(),
    )
    with (
        SmtpClient(
            server.host,
            server.port,
            USER,
            "wrong",
            SecurityOptions.NONE,
            timeout=5.0,
            allow_plaintext_credentials=True,
        ) as client,
        pytest.raises(AuthenticationError) as caught,
    ):
        client.send(MESSAGE)
    assert caught.value.code == 535
    assert caught.value.enhanced_code == "5.7.8"
    server.wait()
    assert [chunk.split(b" ")[0].strip().upper() for chunk in server.received] == [
        b"EHLO",
        b"AUTH",
        b"QUIT",
    ]


# -- choosing a mechanism ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        (("LOGIN", "PLAIN"), "PLAIN"),
        (("PLAIN", "LOGIN"), "PLAIN"),
        (("LOGIN", "PLAIN", "CRAM-MD5"), "CRAM-MD5"),
        (("CRAM-MD5", "SCRAM-SHA-1", "PLAIN"), "SCRAM-SHA-1"),
        (("SCRAM-SHA-1", "SCRAM-SHA-256", "LOGIN"), "SCRAM-SHA-256"),
        (("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"), "SCRAM-SHA-512"),
        (("SCRAM-SHA-512", "SCRAM-SHA-1-PLUS"), "SCRAM-SHA-1-PLUS"),  # bound beats unbound
        (("SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "CRAM-MD5"), "SCRAM-SHA-256-PLUS"),
        (ALL_MECHANISMS, "SCRAM-SHA-512-PLUS"),  # token mechanisms offered, but no token
    ],
)
def test_the_strongest_common_mechanism_is_chosen(
    servers: Servers, certificates: Certificates, offered: tuple[str, ...], expected: str
) -> None:
    server = servers(mechanisms=offered)
    with tls_client(server, certificates, password=PASSWORD) as client:
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.auth_mechanism == expected


@pytest.mark.parametrize(("offered", "expected"), [
    (ALL_MECHANISMS, "OAUTHBEARER"),
    (tuple(name for name in ALL_MECHANISMS if name != "OAUTHBEARER"), "XOAUTH2"),
])
def test_a_token_is_used_even_when_password_mechanisms_are_offered(
    servers: Servers, certificates: Certificates, offered: tuple[str, ...], expected: str
) -> None:
    server = servers(mechanisms=offered)
    with tls_client(server, certificates, oauth_token=TOKEN, password=PASSWORD) as client:
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.auth_mechanism == expected


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (Auth.CRAM_MD5, "CRAM-MD5"),
        (Auth.PLAIN | Auth.LOGIN, "PLAIN"),
        (Auth.LOGIN, "LOGIN"),
        (Auth.SCRAM_SHA_1 | Auth.LOGIN, "SCRAM-SHA-1"),
    ],
)
def test_allowed_authentication_restricts_the_choice(
    servers: Servers, certificates: Certificates, allowed: Auth, expected: str
) -> None:
    server = servers()
    client = tls_client(server, certificates, password=PASSWORD)
    client.allowed_authentication = allowed
    with client:
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.auth_mechanism == expected


def test_no_common_mechanism_names_both_sides_and_sends_no_auth(
    servers: Servers, certificates: Certificates, protocol_log: pytest.LogCaptureFixture
) -> None:
    server = servers(mechanisms=("CRAM-MD5", "SCRAM-SHA-256"))
    client = tls_client(
        server, certificates, password=PASSWORD, allowed_authentication=Auth.PLAIN | Auth.LOGIN
    )
    with client, pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    text = str(caught.value)
    for name in ("CRAM-MD5", "SCRAM-SHA-256", "PLAIN", "LOGIN"):
        assert name in text
    assert auth_commands(protocol_log) == []
    assert server.messages == []


def test_supported_authentication_reflects_the_servers_offer_without_logging_in(
    servers: Servers, certificates: Certificates
) -> None:
    server = servers(mechanisms=("PLAIN", "CRAM-MD5", "XOAUTH2"))
    with tls_client(server, certificates, password="not even checked") as client:
        assert client.supported_authentication == Auth.PLAIN | Auth.CRAM_MD5 | Auth.XOAUTH2
        info = client.connection_info
        assert info is not None
        assert info.auth_mechanism is None
        assert info.supported_authentication == client.supported_authentication


def test_supported_authentication_is_read_after_starttls(
    servers: Servers, certificates: Certificates
) -> None:
    # This server lists AUTH only once the connection is encrypted.
    server = servers(tls=TlsMode.STARTTLS, mechanisms=("LOGIN", "SCRAM-SHA-1"))
    with SmtpClient(
        "localhost",
        server.port,
        USER,
        PASSWORD,
        SecurityOptions.SSL_EXPLICIT,
        timeout=5.0,
        ssl_context=certificates.client_context(),
    ) as client:
        assert client.supported_authentication == Auth.LOGIN | Auth.SCRAM_SHA_1
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.auth_mechanism == "SCRAM-SHA-1"
    assert received.tls_version is not None


def test_supported_authentication_is_none_without_auth(
    servers: Servers, certificates: Certificates
) -> None:
    server = servers(credentials=None)
    with tls_client(server, certificates, username=None) as client:
        assert client.supported_authentication == Auth.NONE


# -- validate_credentials ----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "XOAUTH2"])
def test_validate_credentials(servers: Servers, certificates: Certificates, mechanism: str) -> None:
    server = servers(mechanisms=(mechanism,))
    with tls_client(server, certificates, **secret_for(mechanism, good=True)) as client:
        assert client.validate_credentials() is True
    with tls_client(server, certificates, **secret_for(mechanism, good=False)) as client:
        assert client.validate_credentials() is False
    with tls_client(
        server, certificates, username="mallory", **secret_for(mechanism, good=True)
    ) as client:
        assert client.validate_credentials() is False
    assert server.messages == []


def test_validate_credentials_raises_when_no_mechanism_fits(
    servers: Servers, certificates: Certificates
) -> None:
    server = servers(mechanisms=("CRAM-MD5",))
    with (
        tls_client(
            server, certificates, password=PASSWORD, allowed_authentication=Auth.PLAIN
        ) as client,
        pytest.raises(AuthenticationError),
    ):
        client.validate_credentials()


def test_validate_credentials_then_send_on_the_same_client(
    servers: Servers, certificates: Certificates
) -> None:
    server = servers(mechanisms=("CRAM-MD5",))
    with tls_client(server, certificates, password=PASSWORD) as client:
        assert client.validate_credentials()
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.auth_mechanism == "CRAM-MD5"


# -- credentials and plaintext -----------------------------------------------------------------


@pytest.mark.parametrize("mode", [SecurityOptions.NONE, SecurityOptions.AUTO], ids=lambda m: m.name)
def test_credentials_are_not_sent_over_plaintext_without_opt_in(
    servers: Servers, protocol_log: pytest.LogCaptureFixture, mode: SecurityOptions
) -> None:
    server = servers(tls=TlsMode.NONE, auth_require_tls=False, certificates=None)
    client = SmtpClient(
        server.host, server.port, USER, PASSWORD, mode, timeout=5.0, greeting_timeout=2.0
    )
    with client, pytest.raises(SmtpSecurityError) as caught:
        client.send(MESSAGE)
    assert "allow_plaintext_credentials" in str(caught.value)
    assert auth_commands(protocol_log) == []
    assert server.messages == []

    client.allow_plaintext_credentials = True
    with client:
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.auth_user == USER
    assert received.auth_mechanism == "SCRAM-SHA-512"  # no -PLUS without TLS
    assert received.tls_version is None


def test_plaintext_opt_in_does_not_weaken_tls_modes(
    servers: Servers, certificates: Certificates
) -> None:
    server = servers()
    with tls_client(
        server, certificates, password=PASSWORD, allow_plaintext_credentials=True
    ) as client:
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert received.tls_version is not None
    assert received.auth_user == USER


def test_choosing_mechanisms_after_reading_what_the_server_offers(
    servers: Servers, certificates: Certificates
) -> None:
    """The seed's own flow (issue 11): read ``supported_authentication`` (which connects but
    does not log in), then set ``allowed_authentication``: the next send logs in with it."""
    server = servers(mechanisms=("LOGIN", "SCRAM-SHA-256"))
    with tls_client(server, certificates, password=PASSWORD) as client:
        assert Auth.SCRAM_SHA_256 in client.supported_authentication
        client.allowed_authentication = Auth.LOGIN
        client.send(MESSAGE)
        assert client.connection_info.auth_mechanism == "LOGIN"
    (received,) = server.wait_for_messages(1)
    assert received.auth_mechanism == "LOGIN"


def test_a_login_change_after_logging_in_takes_effect_on_the_next_send(
    servers: Servers, certificates: Certificates
) -> None:
    """SMTP allows one AUTH per connection: a change of mechanisms or credentials after a login
    is made on a new connection, before the next message."""
    server = servers(mechanisms=("LOGIN", "SCRAM-SHA-256"))
    with tls_client(server, certificates, password=PASSWORD) as client:
        client.send(MESSAGE)
        assert client.connection_info.auth_mechanism == "SCRAM-SHA-256"
        first = client.connection_info.local_address
        client.allowed_authentication = Auth.LOGIN
        client.send(MESSAGE)
        assert client.connection_info.auth_mechanism == "LOGIN"
        assert client.connection_info.local_address != first
        client.send(MESSAGE)
        assert client.connection_info.auth_mechanism == "LOGIN"
    assert [m.auth_mechanism for m in server.wait_for_messages(3)] == [
        "SCRAM-SHA-256", "LOGIN", "LOGIN"]
