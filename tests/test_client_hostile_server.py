"""SmtpClient against servers that break the protocol or attack STARTTLS (scripted server).

Garbage and truncated replies raise mailwire's own errors; STARTTLS is sent alone, plaintext
injected after its 220 is fatal before any TLS byte is sent, and everything learned before TLS
is forgotten: EHLO is sent again and only its answer counts (SECURITY.md items 3 and 6).
"""

from __future__ import annotations

from typing import Any

import pytest

from mailwire import (
    AuthenticationError,
    ConnectionLostError,
    GreetingRefusedError,
    SecurityOptions,
    SenderRefusedError,
    SmtpClient,
    SmtpError,
    SmtpKnownAuthenticationType,
    SmtpProtocolError,
    SmtpSecurityError,
    TlsNotSpokenError,
)
from mailwire.devserver import Certificates
from tests.support.scripted import (
    Close,
    Expect,
    ExpectClose,
    Reply,
    ScriptedServer,
    ScriptedServerFactory,
    Send,
    StallHandshake,
    StartTls,
    Step,
    ehlo_reply,
    goodbye,
    greeting,
    handshake,
    mail_transaction,
)

MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n"
TLS_RECORD = b"\x16\x03"  # a TLS handshake record: what a ClientHello starts with


def plain_client(server: ScriptedServer, **options: Any) -> SmtpClient:
    options.setdefault("timeout", 2.0)
    return SmtpClient(server.host, server.port, security=SecurityOptions.NONE, **options)


def commands_received(server: ScriptedServer) -> list[bytes]:
    return [chunk.split(b" ")[0].strip().upper() for chunk in server.received]


# -- broken replies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"HELLO THERE\r\n",
        b"\x00\xff\xfe\x80 binary\r\n",
        b"22\r\n",
        b"2200 too many digits\r\n",
        b"220_bad separator\r\n",
        b"999 out of range\r\n",
        b"220-first line\r\n421 changed code\r\n",
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
    ],
    ids=["words", "binary", "short", "long code", "separator", "range", "code change", "http"],
)
def test_garbage_greeting_is_a_protocol_error(
    scripted_server: ScriptedServerFactory, data: bytes
) -> None:
    server = scripted_server(Send(data), ExpectClose())
    smtp = plain_client(server)
    with pytest.raises(SmtpProtocolError):
        smtp.connect()
    assert not smtp.is_connected
    server.wait()
    assert server.received == []  # not even an EHLO after garbage


def test_endless_reply_line_is_capped(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(Send(b"220 " + b"x" * 100_000), ExpectClose(), allow_errors=True)
    with pytest.raises(SmtpProtocolError):
        plain_client(server).connect()


def test_endless_multiline_reply_is_capped(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(
        greeting(),
        Expect(b"EHLO"),
        Send(b"250-EXTENSION\r\n" * 5000),
        ExpectClose(),
        allow_errors=True,
    )
    with pytest.raises(SmtpProtocolError):
        plain_client(server).connect()


def test_garbage_in_the_middle_of_a_transaction(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(
        *handshake([]), Expect(b"MAIL FROM:"), Send(b"OK THEN\r\n"), ExpectClose()
    )
    smtp = plain_client(server)
    with pytest.raises(SmtpProtocolError):
        smtp.send(MESSAGE)
    assert not smtp.is_connected
    server.wait()


def test_refused_greeting(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(
        Reply(554, "5.7.1 no service for you"), ExpectClose(), allow_errors=True
    )
    with pytest.raises(GreetingRefusedError) as caught:
        plain_client(server).connect()
    assert caught.value.code == 554
    assert caught.value.enhanced_code == "5.7.1"


@pytest.mark.parametrize(
    "last", [Close(), Close(reset=True), Send(b"220 partial")], ids=["close", "reset", "truncated"]
)
def test_connection_dropped_during_greeting(
    scripted_server: ScriptedServerFactory, last: Step
) -> None:
    steps: list[Step] = [last] if isinstance(last, Close) else [last, Close()]
    server = scripted_server(*steps)
    with pytest.raises(ConnectionLostError):
        plain_client(server).connect()


def test_dropped_after_mail(scripted_server: ScriptedServerFactory) -> None:
    # A single connection allowed: a fresh client must not retry behind the caller's back.
    server = scripted_server(*handshake([]), Expect(b"MAIL FROM:"), Close(), repeat=False)
    smtp = plain_client(server)
    with pytest.raises(ConnectionLostError):
        smtp.send(MESSAGE)
    assert server.connection_count == 1


def test_data_accepted_for_a_failed_transaction_is_a_protocol_error(
    scripted_server: ScriptedServerFactory,
) -> None:
    """Every recipient refused, yet the pipelined DATA got 354: the client must not send the
    message and must not leave the connection in data mode."""
    server = scripted_server(
        *handshake(["PIPELINING"]),
        Expect(b"MAIL FROM:"),
        Expect(b"RCPT TO:"),
        Expect(b"DATA"),
        Reply(250, "ok"),
        Reply(550, "5.1.1 no such user"),
        Reply(354, "go ahead anyway"),
        ExpectClose(),
    )
    smtp = plain_client(server)
    with pytest.raises(SmtpProtocolError):
        smtp.send(MESSAGE)
    assert not smtp.is_connected
    server.wait()
    assert b"body" not in b"".join(server.received)


def test_helo_fallback_for_a_server_without_esmtp(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(
        greeting(),
        Expect(b"EHLO"),
        Reply(502, "5.5.1 EHLO not implemented"),
        Expect(b"HELO"),
        Reply(250, "scripted.test"),
        *mail_transaction(),
        *goodbye(),
    )
    with plain_client(server) as smtp:
        result = smtp.send(MESSAGE)
        assert smtp.capabilities.esmtp is False
        assert not smtp.capabilities.extensions
    assert result.reply.code == 250
    server.wait()
    mail = next(chunk for chunk in server.received if chunk.startswith(b"MAIL"))
    assert mail == b"MAIL FROM:<a@example.com>\r\n"  # no ESMTP parameters to an SMTP server


# -- STARTTLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode",
    [SecurityOptions.SSL_EXPLICIT, SecurityOptions.SSL_AUTO, SecurityOptions.AUTO],
    ids=lambda m: m.name,
)
def test_plaintext_injected_after_starttls_220_is_fatal(
    scripted_server: ScriptedServerFactory, certificates: Certificates, mode: SecurityOptions
) -> None:
    server = scripted_server(
        greeting(),
        Expect(b"EHLO"),
        ehlo_reply(["STARTTLS", "PIPELINING"]),
        Expect(b"STARTTLS"),
        Send(b"220 go ahead\r\n250 injected\r\n"),
        ExpectClose(),
        repeat=False,
    )
    smtp = SmtpClient(
        server.host,
        server.port,
        security=mode,
        timeout=2.0,
        greeting_timeout=2.0,
        ssl_context=certificates.client_context(),
    )
    with pytest.raises(SmtpSecurityError) as caught:
        smtp.send(MESSAGE)
    assert not isinstance(caught.value, TlsNotSpokenError)
    assert "inject" in str(caught.value)
    assert not smtp.is_connected
    server.wait()
    assert server.connection_count == 1
    assert server.received[0].startswith(b"EHLO ")
    assert server.received[1] == b"STARTTLS\r\n"
    # Nothing after STARTTLS: no ClientHello (no handshake attempted), no plaintext command.
    assert len(server.received) == 2


STARTTLS_SCRIPT: list[Step] = [
    greeting(),
    Expect(b"EHLO"),
    ehlo_reply(["PIPELINING", "SIZE 1000", "AUTH PLAIN LOGIN", "STARTTLS"]),
    Expect(b"STARTTLS"),
    Reply(220, "2.0.0 ready to start TLS"),
    StartTls(),  # fails the script if the client sent anything after STARTTLS in plaintext
    Expect(b"EHLO"),
    ehlo_reply(["SIZE 2000", "8BITMIME"], hostname="after-tls.test"),
]


def test_ehlo_is_repeated_after_starttls_and_old_capabilities_forgotten(
    scripted_server: ScriptedServerFactory, certificates: Certificates
) -> None:
    server = scripted_server(
        *STARTTLS_SCRIPT, *goodbye(), ssl_context=certificates.server_context()
    )
    with SmtpClient(
        "localhost",
        server.port,
        security=SecurityOptions.SSL_EXPLICIT,
        timeout=2.0,
        ssl_context=certificates.client_context(),
    ) as smtp:
        info = smtp.connect()
        capabilities = smtp.capabilities
        assert capabilities == info.capabilities
        assert capabilities.extensions == {"SIZE": "2000", "8BITMIME": ""}
        assert capabilities.size == 2000
        assert not capabilities.pipelining
        assert "STARTTLS" not in capabilities
        assert "AUTH" not in capabilities
        assert smtp.supported_authentication == SmtpKnownAuthenticationType.NONE
        assert info.security is SecurityOptions.SSL_EXPLICIT
        assert info.tls_version is not None
    server.wait()
    assert commands_received(server) == [b"EHLO", b"STARTTLS", b"EHLO", b"QUIT"]


def test_auth_offered_only_before_tls_is_not_used(
    scripted_server: ScriptedServerFactory, certificates: Certificates
) -> None:
    # After TLS the server offers no AUTH: the client must not use the pre-TLS offer. The
    # script expects QUIT next, so an AUTH command would break it.
    server = scripted_server(
        *STARTTLS_SCRIPT, *goodbye(), ssl_context=certificates.server_context()
    )
    smtp = SmtpClient(
        "localhost",
        server.port,
        "alice",
        "secret",
        SecurityOptions.SSL_EXPLICIT,
        timeout=2.0,
        ssl_context=certificates.client_context(),
    )
    with smtp, pytest.raises(AuthenticationError, match="no common"):
        smtp.send(MESSAGE)
    server.wait()
    assert b"AUTH" not in commands_received(server)


def test_pipelining_offered_only_before_tls_is_not_used(
    scripted_server: ScriptedServerFactory, certificates: Certificates
) -> None:
    # The post-TLS EHLO has no PIPELINING, so MAIL must go alone and wait for its reply: after
    # the refusal a lockstep client sends nothing more for the message (no transaction is open,
    # no RSET is needed), a pipelining one would already have sent RCPT.
    server = scripted_server(
        *STARTTLS_SCRIPT,
        Expect(b"MAIL FROM:"),
        Reply(550, "5.7.1 not you"),
        *goodbye(),
        ssl_context=certificates.server_context(),
    )
    with (
        SmtpClient(
            "localhost",
            server.port,
            security=SecurityOptions.SSL_EXPLICIT,
            timeout=2.0,
            ssl_context=certificates.client_context(),
        ) as smtp,
        pytest.raises(SenderRefusedError),
    ):
        smtp.send(MESSAGE)
    server.wait()
    assert commands_received(server) == [b"EHLO", b"STARTTLS", b"EHLO", b"MAIL", b"QUIT"]


def test_starttls_to_a_server_that_does_not_speak_tls(
    scripted_server: ScriptedServerFactory, certificates: Certificates
) -> None:
    server = scripted_server(
        greeting(),
        Expect(b"EHLO"),
        ehlo_reply(["STARTTLS"]),
        Expect(b"STARTTLS"),
        Reply(220, "go ahead"),
        StallHandshake(0.3),  # take the ClientHello, then answer it with plaintext
        Send(b"250 this is not TLS at all\r\n"),
        ExpectClose(),
        repeat=False,
        allow_errors=True,
    )
    smtp = SmtpClient(
        server.host,
        server.port,
        security=SecurityOptions.AUTO,
        timeout=2.0,
        greeting_timeout=2.0,
        ssl_context=certificates.client_context(),
    )
    with pytest.raises(SmtpSecurityError):
        smtp.send(MESSAGE)
    server.wait()
    # AUTO must not fall back to plaintext after a failed TLS attempt.
    assert server.connection_count == 1
    assert server.received[2].startswith(TLS_RECORD)


@pytest.mark.parametrize(
    ("steps", "failure"),
    [
        ([Send(b"\r\n"), ExpectClose()], SmtpProtocolError),
        ([greeting(), Expect(b"EHLO"), Send(b"\xff\xfe\r\n"), ExpectClose()], SmtpProtocolError),
        ([Send(b"220\r\n"), Expect(b"EHLO"), Send(b"250\r\n"), *goodbye()], None),
        ([greeting(), Expect(b"EHLO"), Send(b"250-\r\n250 \r\n"), *goodbye()], None),
        (
            [
                greeting(),
                Expect(b"EHLO"),
                ehlo_reply(["SIZE not-a-number", "AUTH", "-BAD KEYWORD", "8BITMIME"]),
                *goodbye(),
            ],
            None,
        ),
    ],
    ids=["empty line", "binary EHLO reply", "bare codes", "empty EHLO lines", "odd keywords"],
)
def test_odd_but_parseable_or_broken_replies(
    scripted_server: ScriptedServerFactory,
    steps: list[Step],
    failure: type[SmtpError] | None,
) -> None:
    server = scripted_server(*steps)
    smtp = plain_client(server)
    if failure is not None:
        with pytest.raises(failure):
            smtp.connect()
        return
    with smtp:
        capabilities = smtp.capabilities
        assert not capabilities.size  # None or 0: no limit announced
        assert smtp.supported_authentication == SmtpKnownAuthenticationType.NONE
        assert set(capabilities.extensions) <= {"SIZE", "AUTH", "8BITMIME"}  # no "-BAD"
    server.wait()
