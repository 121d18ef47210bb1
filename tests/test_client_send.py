"""SmtpClient.send against a real server: inputs, envelope, refusals, extensions, reuse.

Everything is checked on what the server received (``DevServer.messages``), not only on what
``send`` returned.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailwire import (
    DataRefusedError,
    DeliveryUnknownError,
    MessageError,
    RecipientsRefusedError,
    SecurityOptions,
    SenderRefusedError,
    SmtpClient,
    SmtpError,
    SmtpProtocolError,
)
from mailwire.devserver import Certificates, DevServer, ReceivedMessage
from tests.support.scripted import (
    Close,
    Expect,
    ExpectBytes,
    ExpectClose,
    Reply,
    ScriptedServerFactory,
    goodbye,
    handshake,
    mail_transaction,
)

Servers = Callable[..., DevServer]
RAW = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>, carol@example.org\r\n"
    b"Cc: dave@example.net\r\n"
    b"Bcc: Eve <eve@example.net>,\r\n"
    b" frank@example.net\r\n"
    b"Subject: raw\r\n"
    b"\r\n"
    b"Body line one.\r\n"
    b"Bcc: not a header, just text in the body\r\n"
)
RAW_WITHOUT_BCC = RAW.replace(b"Bcc: Eve <eve@example.net>,\r\n frank@example.net\r\n", b"")
RAW_RECIPIENTS = (
    "bob@example.org",
    "carol@example.org",
    "dave@example.net",
    "eve@example.net",
    "frank@example.net",
)
SMALL = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: small\r\n\r\nsmall\r\n"


@pytest.fixture
def servers(server_pool: Servers) -> Servers:
    """``servers(**DevServer options)``: plaintext servers, one per configuration, emptied of
    messages each time one is handed out."""

    def get(**options: Any) -> DevServer:
        return server_pool(**options)

    return get


def plain_client(server: DevServer | Any, **options: Any) -> SmtpClient:
    options.setdefault("timeout", 5.0)
    return SmtpClient(server.host, server.port, security=SecurityOptions.NONE, **options)


def local_address(client: SmtpClient) -> tuple[str, int]:
    info = client.connection_info
    assert info is not None
    return (info.local_address[0], info.local_address[1])


def only(server: DevServer) -> ReceivedMessage:
    (message,) = server.wait_for_messages(1)
    return message


def email_message(**headers: str) -> EmailMessage:
    message = EmailMessage()
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Hello from an EmailMessage.\n")
    return message


# -- message inputs ----------------------------------------------------------------------------


def test_email_message_envelope_from_headers_and_bcc_stripped(servers: Servers) -> None:
    server = servers()
    message = email_message(
        From="Alice <alice@example.com>",
        To="Bob <bob@example.org>, carol@example.org",
        Cc="dave@example.net",
        Bcc="Eve <eve@example.net>",
        Subject="envelope",
    )
    with plain_client(server) as client:
        result = client.send(message)
    received = only(server)
    assert received.mail_from == "alice@example.com"
    assert received.rcpt_tos == (
        "bob@example.org",
        "carol@example.org",
        "dave@example.net",
        "eve@example.net",
    )
    assert b"Bcc" not in received.data and b"eve@example.net" not in received.data
    assert b"Subject: envelope\r\n" in received.data
    assert received.data.endswith(b"Hello from an EmailMessage.\r\n")
    assert result.sender == "alice@example.com"
    assert result.accepted == received.rcpt_tos
    assert result.refused == {}
    assert result.all_accepted
    assert result.reply.code == 250
    # The caller's message is left as it was.
    assert message["Bcc"] == "Eve <eve@example.net>"


def test_sender_header_wins_over_from(servers: Servers) -> None:
    server = servers()
    message = email_message(
        From="author@example.com", Sender="secretary@example.com", To="bob@example.org"
    )
    with plain_client(server) as client:
        client.send(message)
    assert only(server).mail_from == "secretary@example.com"


def test_resent_headers_give_the_envelope_of_a_resent_message(servers: Servers) -> None:
    server = servers()
    raw = (
        b"Resent-Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Resent-From: forwarder@example.com\r\nResent-To: new@example.org\r\n"
        b"Resent-Bcc: hidden@example.org\r\n"
        b"From: original@example.com\r\nTo: old@example.org\r\nSubject: fwd\r\n\r\nbody\r\n"
    )
    with plain_client(server) as client:
        client.send(raw)
    received = only(server)
    assert received.mail_from == "forwarder@example.com"
    assert received.rcpt_tos == ("new@example.org", "hidden@example.org")
    assert b"hidden@example.org" not in received.data
    assert received.data == raw.replace(b"Resent-Bcc: hidden@example.org\r\n", b"")


def test_bytes_envelope_from_headers_and_bcc_stripped(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        result = client.send(RAW)
    received = only(server)
    assert received.data == RAW_WITHOUT_BCC
    assert received.mail_from == "alice@example.com"
    assert received.rcpt_tos == RAW_RECIPIENTS
    assert result.accepted == RAW_RECIPIENTS


def test_path(servers: Servers, tmp_path: Path) -> None:
    # A str is refused (it could be text or a path): tests/test_message_inputs.py.
    server = servers()
    path = tmp_path / "message.eml"
    path.write_bytes(RAW)
    with plain_client(server) as client:
        client.send(path)
    received = only(server)
    assert received.data == RAW_WITHOUT_BCC
    assert received.rcpt_tos == RAW_RECIPIENTS
    assert f"SIZE={len(RAW_WITHOUT_BCC)}" in received.mail_options


def test_binary_file_objects(servers: Servers, tmp_path: Path) -> None:
    server = servers()
    path = tmp_path / "message.eml"
    path.write_bytes(RAW)
    with plain_client(server) as client, path.open("rb") as handle:
        client.send(handle)
        client.send(io.BytesIO(RAW))
    first, second = server.wait_for_messages(2)
    for received in (first, second):
        assert received.data == RAW_WITHOUT_BCC
        assert received.rcpt_tos == RAW_RECIPIENTS


def test_iterator_of_chunks_with_headers_split_across_chunks(servers: Servers) -> None:
    server = servers()
    chunks = [RAW[i : i + 7] for i in range(0, len(RAW), 7)]
    with plain_client(server) as client:
        client.send(iter(chunks))
    received = only(server)
    assert received.data == RAW_WITHOUT_BCC
    assert received.mail_from == "alice@example.com"
    assert received.rcpt_tos == RAW_RECIPIENTS


def test_a_large_message_arrives_intact(servers: Servers) -> None:
    server = servers()
    body = b"".join(b"line %07d of a large message\r\n" % i for i in range(40_000))
    message = SMALL + body
    with plain_client(server) as client:
        client.send(message)
    assert only(server).data == message


# -- envelope ----------------------------------------------------------------------------------


def test_explicit_sender_and_recipients_override_headers(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        result = client.send(
            RAW, sender="bounces@example.com", recipients=["x@example.org", "y@example.org"]
        )
        client.send(
            email_message(From="a@example.com", To="b@example.org"), recipients="only@example.org"
        )
    first, second = server.wait_for_messages(2)
    assert first.mail_from == "bounces@example.com"
    assert first.rcpt_tos == ("x@example.org", "y@example.org")
    assert first.data == RAW_WITHOUT_BCC  # the headers are not rewritten
    assert result.accepted == ("x@example.org", "y@example.org")
    assert second.mail_from == "a@example.com"
    assert second.rcpt_tos == ("only@example.org",)


def test_duplicate_recipients_are_sent_once(servers: Servers) -> None:
    server = servers()
    message = email_message(
        From="a@example.com",
        To="b@example.org, c@example.org",
        Cc="b@example.org",
        Bcc="c@example.org",
    )
    with plain_client(server) as client:
        result = client.send(message)
    assert only(server).rcpt_tos == ("b@example.org", "c@example.org")
    assert result.accepted == ("b@example.org", "c@example.org")


def test_null_sender(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        client.send(SMALL, sender="")
    assert only(server).mail_from == ""


def test_no_recipients_is_a_message_error_and_nothing_is_sent(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        with pytest.raises(MessageError):
            client.send(b"From: a@example.com\r\nSubject: nobody\r\n\r\nbody\r\n")
        with pytest.raises(MessageError):
            client.send(b"To: b@example.org\r\nSubject: from nobody\r\n\r\nbody\r\n")
        with pytest.raises(MessageError):
            client.send(SMALL, recipients=[])
        client.send(SMALL)
    assert len(server.wait_for_messages(1)) == 1


# -- refusals ----------------------------------------------------------------------------------


def test_partial_refusal_is_reported_with_the_servers_reply(servers: Servers) -> None:
    server = servers(refuse_recipients=["nobody@example.org"])
    with plain_client(server) as client:
        result = client.send(
            SMALL, recipients=["b@example.org", "nobody@example.org", "c@example.org"]
        )
    received = only(server)
    assert received.rcpt_tos == ("b@example.org", "c@example.org")
    assert result.accepted == ("b@example.org", "c@example.org")
    assert not result.all_accepted
    assert set(result.refused) == {"nobody@example.org"}
    refusal = result.refused["nobody@example.org"]
    assert refusal.code == 550
    assert refusal.enhanced_code == "5.1.1"
    assert "User unknown" in refusal.text


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "lockstep"])
def test_failed_transactions_leave_the_connection_usable(
    servers: Servers, pipelining: bool
) -> None:
    server = servers(
        refuse_recipients=["nobody@example.org", "nobody2@example.org"],
        refuse_senders=["spammer@example.com"],
        pipelining=pipelining,
    )
    with plain_client(server) as client:
        client.send(SMALL)
        address = local_address(client)

        with pytest.raises(RecipientsRefusedError) as refused:
            client.send(SMALL, recipients=["nobody@example.org", "nobody2@example.org"])
        assert refused.value.code == 550
        assert refused.value.enhanced_code == "5.1.1"
        assert set(refused.value.refused) == {"nobody@example.org", "nobody2@example.org"}
        assert all(reply.code == 550 for reply in refused.value.refused.values())
        assert client.is_connected

        with pytest.raises(SenderRefusedError) as sender:
            client.send(SMALL, sender="spammer@example.com")
        assert sender.value.code == 550
        assert sender.value.enhanced_code == "5.7.1"
        assert sender.value.sender == "spammer@example.com"
        assert client.is_connected

        client.send(SMALL, recipients="after@example.org")
        assert local_address(client) == address

    first, last = server.wait_for_messages(2)
    assert server.messages == [first, last]  # the failed transactions delivered nothing
    assert first.peer == last.peer == address
    assert last.rcpt_tos == ("after@example.org",)
    assert last.mail_from == "a@example.com"


def test_data_refused_before_the_message_resets_and_keeps_the_connection(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(
        *handshake([]),
        Expect(b"MAIL FROM:"),
        Reply(250, "ok"),
        Expect(b"RCPT TO:"),
        Reply(250, "ok"),
        Expect(b"DATA"),
        Reply(554, "5.3.0 no DATA for you"),
        Expect(b"RSET"),
        Reply(250, "ok"),
        *mail_transaction(),
        *goodbye(),
        repeat=False,
    )
    with plain_client(server) as client:
        with pytest.raises(DataRefusedError) as caught:
            client.send(SMALL)
        assert caught.value.code == 554
        assert client.send(SMALL).reply.code == 250
    server.wait()
    assert server.connection_count == 1


def test_message_refused_after_its_data_keeps_the_connection(servers: Servers) -> None:
    # A stream has no known size, so no SIZE= is declared and the server refuses at the end.
    server = servers(data_size_limit=1000)
    with plain_client(server) as client:
        client.connect()
        address = local_address(client)
        with pytest.raises(DataRefusedError) as caught:
            client.send(io.BytesIO(SMALL + (b"z" * 70 + b"\r\n") * 30))
        assert caught.value.code == 552
        client.send(SMALL)
        assert local_address(client) == address
    received = only(server)
    assert received.data == SMALL
    assert received.peer == address


def test_server_shutting_down_with_421_then_the_next_send_reconnects(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(
        [*handshake([]), Expect(b"MAIL FROM:"), Reply(421, "4.3.2 shutting down"), Close()],
        [*handshake([]), *mail_transaction(), *goodbye()],
    )
    with plain_client(server) as client:
        with pytest.raises(SmtpError):
            client.send(SMALL)
        assert not client.is_connected
        assert client.send(SMALL).reply.code == 250
    server.wait(connections=2)
    assert server.connection_count == 2


# -- extensions --------------------------------------------------------------------------------


def test_size_is_declared_and_an_oversize_message_is_refused_before_sending(
    servers: Servers,
) -> None:
    server = servers(data_size_limit=1000)
    big = SMALL + b"x" * 998 + b"\r\n"
    with plain_client(server) as client:
        assert client.capabilities.size == 1000
        with pytest.raises(MessageError, match="1000"):
            client.send(big)
        assert server.messages == []
        client.send(SMALL)
    received = only(server)
    assert f"SIZE={len(SMALL)}" in received.mail_options
    assert received.data == SMALL


def test_oversize_message_never_reaches_mail_from(scripted_server: ScriptedServerFactory) -> None:
    # A client that sent MAIL would break this script, which expects QUIT next.
    server = scripted_server(*handshake(["SIZE 100", "PIPELINING"]), *goodbye())
    with plain_client(server) as client, pytest.raises(MessageError):
        client.send(SMALL + b"y" * 200)
    server.wait()


def test_smtputf8_is_used_for_a_utf8_address(servers: Servers) -> None:
    server = servers(smtputf8=True)
    message = email_message(
        From="jörg@bücher.example", To="δοκιμή@παράδειγμα.example", Subject="Grüße"
    )
    with plain_client(server) as client:
        client.send(message)
        client.send(SMALL)
    utf8, ascii_only = server.wait_for_messages(2)
    assert "SMTPUTF8" in utf8.mail_options
    assert utf8.mail_from == "jörg@bücher.example"
    assert utf8.rcpt_tos == ("δοκιμή@παράδειγμα.example",)
    assert "To: δοκιμή@παράδειγμα.example".encode() in utf8.data
    assert "SMTPUTF8" not in ascii_only.mail_options


def test_utf8_address_without_smtputf8_is_a_message_error(servers: Servers) -> None:
    server = servers(smtputf8=False)
    with plain_client(server) as client:
        assert "SMTPUTF8" not in client.capabilities
        with pytest.raises(MessageError, match="SMTPUTF8"):
            client.send(SMALL, recipients=["jörg@example.org"])
        client.send(SMALL)
    assert only(server).rcpt_tos == ("b@example.org",)


def test_8bitmime_is_declared_for_8bit_content(servers: Servers) -> None:
    server = servers()
    eight_bit = email_message(From="a@example.com", To="b@example.org")
    eight_bit.set_content("Grüße aus Köln\n", cte="8bit")
    with plain_client(server) as client:
        client.send(eight_bit)
        client.send(email_message(From="a@example.com", To="b@example.org"))
    declared, plain = server.wait_for_messages(2)
    assert "BODY=8BITMIME" in declared.mail_options
    assert "Grüße aus Köln\r\n".encode() in declared.data
    assert "BODY=8BITMIME" not in plain.mail_options


def test_8bit_message_without_8bitmime_is_refused_before_mail(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(*handshake(["PIPELINING"]), *goodbye())
    message = email_message(From="a@example.com", To="b@example.org")
    message.set_content("Grüße\n", cte="8bit")
    with plain_client(server) as client, pytest.raises(MessageError, match="8BITMIME"):
        client.send(message)
    server.wait()


def test_8bit_bytes_without_8bitmime_are_refused_before_mail(
    scripted_server: ScriptedServerFactory,
) -> None:
    """Bytes in memory are checked before anything is sent; the connection stays usable."""
    server = scripted_server(*handshake([]), Expect(b"NOOP"), Reply(250, "ok"), *goodbye())
    with plain_client(server) as client:
        with pytest.raises(MessageError, match="8BITMIME"):
            client.send(SMALL + "Grüße\r\n".encode())
        client.noop()
    server.wait()
    assert not any(line.startswith(b"MAIL") for line in server.received)


def test_8bit_streamed_data_without_8bitmime_is_never_completed(
    scripted_server: ScriptedServerFactory,
) -> None:
    """A stream is checked as it goes; the end-of-data marker must never be sent."""
    server = scripted_server(
        *handshake([]),
        Expect(b"MAIL FROM:"),
        Reply(250, "ok"),
        Expect(b"RCPT TO:"),
        Reply(250, "ok"),
        Expect(b"DATA"),
        Reply(354, "go ahead"),
        ExpectClose(),
    )
    with plain_client(server) as client, pytest.raises(MessageError, match="8BITMIME"):
        client.send(iter([SMALL, "Grüße\r\n".encode()]))
    server.wait()
    assert not server.received[-1].endswith(b"\r\n.\r\n")


# -- data framing end to end -------------------------------------------------------------------


def test_lines_starting_with_a_dot_arrive_intact(servers: Servers) -> None:
    server = servers()
    body = b".\r\n..\r\n.hidden\r\ntext\r\n.\r\nMAIL FROM:<smuggled@example.com>\r\n. \r\n...last"
    with plain_client(server) as client:
        client.send(SMALL + body)
        client.send(SMALL)
    first, second = server.wait_for_messages(2)
    assert first.data == SMALL + body + b"\r\n"
    assert second.data == SMALL
    assert len(server.messages) == 2


def test_bare_line_ends_are_normalised_so_nothing_can_be_smuggled(servers: Servers) -> None:
    server = servers()
    body = (
        b"one\n.\nMAIL FROM:<evil@example.com>\nRCPT TO:<victim@example.org>\nDATA\n"
        b"two\r.\r\nthree\r\n.\rfour\n"
    )
    with plain_client(server) as client:
        client.send(SMALL + body)
    received = only(server)
    assert received.data == SMALL + (
        b"one\r\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
        b"two\r\n.\r\nthree\r\n.\r\nfour\r\n"
    )
    assert received.rcpt_tos == ("b@example.org",)
    assert len(server.messages) == 1


def test_bdat_sends_exact_byte_counts_without_dot_stuffing(
    scripted_server: ScriptedServerFactory,
) -> None:
    body = b".\r\n.leading dot\nbare line feed\r\n"
    wire = SMALL + b".\r\n.leading dot\r\nbare line feed\r\n"
    server = scripted_server(
        *handshake(["CHUNKING", "PIPELINING", "SIZE 100000"]),
        Expect(b"MAIL FROM:<a@example.com>"),
        Expect(b"RCPT TO:<b@example.org>"),
        Reply(250, "ok"),
        Reply(250, "ok"),
        Expect(b"BDAT %d LAST\r\n" % len(wire)),
        ExpectBytes(len(wire)),
        Reply(250, "2.0.0 queued"),
        *goodbye(),
    )
    with plain_client(server) as client:
        result = client.send(SMALL + body)
    assert result.reply.code == 250
    server.wait()
    assert server.received[-2] == wire
    assert not any(chunk.startswith(b"DATA") for chunk in server.received)


def test_sent_for_a_transaction_that_failed_is_a_protocol_error_caught_as_it_comes(
    scripted_server: ScriptedServerFactory,
) -> None:
    """Two small messages in one flight; the server refuses the first one's only recipient,
    yet answers 250 to its ``BDAT LAST``. That verdict cannot be trusted, and nor can the
    rest of what this server says: the first is a protocol error, the second (its end written,
    its verdict not taken) unknown, never sent or refused on the word of this server."""
    second = SMALL.replace(b"small\r\n", b"second\r\n")
    server = scripted_server(
        *handshake(["CHUNKING", "PIPELINING"]),
        Expect(b"MAIL FROM:<a@example.com>"), Expect(b"RCPT TO:<b@example.org>"),
        Expect(b"BDAT %d LAST" % len(SMALL)), ExpectBytes(len(SMALL)),
        Expect(b"RSET"), Expect(b"MAIL FROM:<a@example.com>"), Expect(b"RCPT TO:<b@example.org>"),
        Expect(b"BDAT %d LAST" % len(second)), ExpectBytes(len(second)),
        Reply(250, "2.1.0 ok"), Reply(550, "5.1.1 no such user"),
        Reply(250, "2.0.0 queued all the same"),
        Reply(250, "ok"), Reply(250, "2.1.0 ok"), Reply(250, "2.1.5 ok"),
        Reply(250, "2.0.0 queued"),
        ExpectClose(),
        allow_errors=True,  # the client hangs up on this server, perhaps before its last replies
    )
    with plain_client(server) as client:
        results = list(client.send_many([SMALL, second]))
        assert not client.is_connected
    assert [result.index for result in results] == [0, 1]
    assert isinstance(results[0].error, SmtpProtocolError)
    assert "accepted a message whose transaction had failed" in str(results[0].error)
    assert isinstance(results[1].error, DeliveryUnknownError)
    server.wait()
    assert all("Connection reset" in error or "Broken pipe" in error for error in server.errors)


# -- connection reuse --------------------------------------------------------------------------


def test_repeated_sends_reuse_one_connection(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        for number in range(4):
            client.send(SMALL.replace(b"small\r\n", b"number %d\r\n" % number))
            assert client.is_connected
        address = local_address(client)
    messages = server.wait_for_messages(4)
    assert {message.peer for message in messages} == {address}
    assert [message.data.rsplit(b"\r\n", 2)[-2] for message in messages] == [
        b"number 0",
        b"number 1",
        b"number 2",
        b"number 3",
    ]


def test_server_restart_between_sends_is_handled_transparently(
    certificates: Certificates,
) -> None:
    first_server = DevServer()
    first_server.start()
    port = first_server.port
    try:
        client = plain_client(first_server)
        client.send(SMALL)
        address = local_address(client)
    finally:
        first_server.stop()  # closes the idle connection from the server side
    with DevServer(port=port) as second_server, client:
        client.send(SMALL)
        new_address = local_address(client)
        received = only(second_server)
    assert only(first_server).peer == address
    assert received.peer == new_address != address


def test_server_closing_the_idle_connection_leads_to_a_transparent_reconnect(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(
        [
            *handshake(["PIPELINING"]),
            *mail_transaction(),
            Reply(421, "4.4.2 idle for too long, closing"),
            Close(),
        ],
        [*handshake(["PIPELINING"]), *mail_transaction(), *goodbye()],
    )
    with plain_client(server) as client:
        client.send(SMALL)
        server.wait(connections=1)  # the server has closed the first connection
        result = client.send(SMALL)
    assert result.reply.code == 250
    server.wait()
    assert server.connection_count == 2
    for connection in server.connections:
        assert sum(chunk.endswith(b"\r\n.\r\n") for chunk in connection.received) == 1


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "lockstep"])
def test_server_gone_when_mail_is_sent_retries_once_on_a_new_connection(
    scripted_server: ScriptedServerFactory, pipelining: bool
) -> None:
    extensions = ["PIPELINING"] if pipelining else []
    server = scripted_server(
        [*handshake(extensions), *mail_transaction(), Expect(b"MAIL FROM:"), Close()],
        [*handshake(extensions), *mail_transaction(), *goodbye()],
    )
    with plain_client(server) as client:
        client.send(SMALL)
        result = client.send(SMALL)
    assert result.accepted == ("b@example.org",)
    server.wait()
    assert server.connection_count == 2
    delivered = [
        sum(chunk.endswith(b"\r\n.\r\n") for chunk in connection.received)
        for connection in server.connections
    ]
    assert delivered == [1, 1]


# -- send_mail ---------------------------------------------------------------------------------


def test_send_mail(servers: Servers) -> None:
    server = servers()
    with plain_client(server) as client:
        result = client.send_mail(
            "alice@example.com",
            ["bob@example.org", "carol@example.org"],
            "Quick note",
            "Just text.\n.starts with a dot\n",
        )
        client.send_mail(
            "alice@example.com", "bob@example.org", "Rich", "plain part", html="<p>html part</p>"
        )
    text, rich = server.wait_for_messages(2)
    assert result.accepted == ("bob@example.org", "carol@example.org")
    assert text.mail_from == "alice@example.com"
    assert text.rcpt_tos == ("bob@example.org", "carol@example.org")
    assert b"Subject: Quick note\r\n" in text.data
    assert b"To: bob@example.org, carol@example.org\r\n" in text.data
    assert text.data.endswith(b"\r\n\r\nJust text.\r\n.starts with a dot\r\n")
    assert rich.rcpt_tos == ("bob@example.org",)
    assert b"multipart/alternative" in rich.data
    assert b"<p>html part</p>" in rich.data and b"plain part" in rich.data
