"""The Postfix fixtures (tests/support/postfix.py), proved with the standard library.

smtplib and a raw socket talk to a real Postfix smtpd: the extensions it
advertises, delivery byte for byte, BDAT by hand, the rejections it is set up
to give, and STARTTLS / implicit TLS with the fixture's CA.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postfix as postfix_support
from tests.support.postfix import (
    DeliveredMessage,
    PostfixServer,
    as_stored,
    original_content,
)

EXTENSIONS = ("chunking", "dsn", "pipelining", "smtputf8", "8bitmime", "enhancedstatuscodes")


def unique(local: str = "user", domain: str = "example.test") -> str:
    """An address no other test uses, so a shared server's Maildir can be filtered.

    ``local+tag``: the fixture's special addresses (refuse@, ...) keep their meaning.
    """
    return f"{local}+{uuid.uuid4().hex[:12]}@{domain}"


class RawSmtp:
    """Line-level SMTP over a socket, for what smtplib cannot do (BDAT)."""

    def __init__(self, server: PostfixServer) -> None:
        self.socket = socket.create_connection(server.address, timeout=10)
        self.reader = self.socket.makefile("rb")

    def reply(self) -> tuple[int, list[bytes]]:
        lines = []
        while True:
            line = self.reader.readline()
            assert line.endswith(b"\r\n"), f"connection closed or bad line: {line!r}"
            lines.append(line[4:-2])
            if line[3:4] == b" ":
                return int(line[:3]), lines

    def command(self, data: bytes) -> tuple[int, list[bytes]]:
        self.socket.sendall(data)
        return self.reply()

    def close(self) -> None:
        self.reader.close()
        self.socket.close()


@pytest.fixture
def raw(postfix_server: PostfixServer) -> Iterator[RawSmtp]:
    connection = RawSmtp(postfix_server)
    assert connection.reply()[0] == 220
    code, _ = connection.command(b"EHLO client.example.test\r\n")
    assert code == 250
    yield connection
    connection.close()


def test_ehlo_advertises_the_extensions(postfix_server: PostfixServer) -> None:
    with smtplib.SMTP(postfix_server.host, postfix_server.port, timeout=10) as client:
        code, greeting = client.ehlo("client.example.test")
        assert code == 250
        assert greeting.startswith(postfix_server.hostname.encode())
        for extension in EXTENSIONS:
            assert client.has_extn(extension), extension
        assert client.esmtp_features["size"] == str(postfix_server.message_size_limit)
        assert not client.has_extn("starttls")  # the plaintext instance offers no TLS
        assert not client.has_extn("auth")


def test_message_arrives_byte_for_byte(postfix_server: PostfixServer) -> None:
    sender, recipient = unique("sender"), unique("rcpt", "example.com")
    message = (
        b"From: Sender <" + sender.encode() + b">\r\n"
        b"To: <" + recipient.encode() + b">\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
        b"Received: from elsewhere by somewhere; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"X-Long: " + b"x" * 3000 + b"\r\n"  # longer than Postfix's line_length_limit
        b"\r\n"
        b"8-bit body: caf\xc3\xa9 \xff\r\n"
        b".a line that starts with a dot\r\n"
        b"..two dots\r\n"
        b"\r\n"
        b"  trailing spaces  \r\n"
    )
    with smtplib.SMTP(postfix_server.host, postfix_server.port, timeout=10) as client:
        refused = client.sendmail(sender, [recipient], message, mail_options=["BODY=8BITMIME"])
    assert refused == {}

    delivered = postfix_server.message(to=recipient)
    assert delivered.content == as_stored(message)
    assert delivered.content_crlf == message
    assert delivered.sender == sender
    assert delivered.recipient == recipient
    assert delivered.original_recipient == recipient
    assert delivered.protocol == "ESMTP"
    assert delivered.queue_id
    assert delivered.raw.endswith(as_stored(message))
    assert delivered.raw.startswith(b"Return-Path: <" + sender.encode() + b">\n")


def test_one_file_per_recipient(postfix_server: PostfixServer) -> None:
    first, second = unique("one"), unique("two", "example.net")
    with smtplib.SMTP(postfix_server.host, postfix_server.port, timeout=10) as client:
        client.sendmail(unique("from"), [first, second], b"Subject: two\r\n\r\nbody\r\n")
    for recipient in (first, second):
        delivered = postfix_server.message(to=recipient)
        assert delivered.content == b"Subject: two\n\nbody\n"


def test_bdat_by_hand_is_accepted_and_delivered(
    raw: RawSmtp, postfix_server: PostfixServer
) -> None:
    recipient = unique("bdat")
    chunks = [
        b"Subject: chunked\r\n\r\nfirst chunk ends mid-li",
        b"ne\r\n.no dot-stuffing in BDAT\r\n",
        b"last line without CRLF",
    ]
    # Pipelined: MAIL, RCPT and the first chunk in one write.
    raw.socket.sendall(
        b"MAIL FROM:<" + unique("from").encode() + b"> BODY=8BITMIME\r\n"
        b"RCPT TO:<" + recipient.encode() + b">\r\n" + b"BDAT %d\r\n" % len(chunks[0]) + chunks[0]
    )
    assert raw.reply()[0] == 250
    assert raw.reply()[0] == 250
    code, lines = raw.reply()
    assert (code, lines[0]) == (250, b"2.0.0 Ok: %d bytes" % len(chunks[0]))
    code, _ = raw.command(b"BDAT %d\r\n" % len(chunks[1]) + chunks[1])
    assert code == 250
    code, lines = raw.command(b"BDAT %d LAST\r\n" % len(chunks[2]) + chunks[2])
    assert code == 250
    assert lines[0].startswith(b"2.0.0 Ok: ") and b"queued as " in lines[0]
    queue_id = lines[0].rsplit(b" ", 1)[1].decode()
    assert raw.command(b"QUIT\r\n")[0] == 221

    delivered = postfix_server.message(to=recipient)
    assert delivered.queue_id == queue_id
    assert delivered.content == as_stored(b"".join(chunks))
    assert delivered.content.splitlines()[-2:] == [
        b".no dot-stuffing in BDAT",
        b"last line without CRLF",
    ]


def test_bdat_zero_last_and_rejection_after_last(
    raw: RawSmtp, postfix_server: PostfixServer
) -> None:
    recipient = unique("zero")
    body = b"Subject: zero\r\n\r\nbody\r\n"
    assert raw.command(b"MAIL FROM:<" + unique("from").encode() + b">\r\n")[0] == 250
    assert raw.command(b"RCPT TO:<" + recipient.encode() + b">\r\n")[0] == 250
    assert raw.command(b"BDAT %d\r\n" % len(body) + body)[0] == 250
    assert raw.command(b"BDAT 0 LAST\r\n")[0] == 250
    assert postfix_server.message(to=recipient).content == as_stored(body)

    assert raw.command(b"MAIL FROM:<" + unique("from").encode() + b">\r\n")[0] == 250
    assert raw.command(b"RCPT TO:<" + unique("reject-data").encode() + b">\r\n")[0] == 250
    code, lines = raw.command(b"BDAT %d LAST\r\n" % len(body) + body)
    assert code == 550 and lines[0].startswith(b"5.7.1 ")


def test_rejections_at_rcpt(postfix_server: PostfixServer) -> None:
    with smtplib.SMTP(postfix_server.host, postfix_server.port, timeout=10) as client:
        client.ehlo()
        assert client.mail(unique("from"))[0] == 250
        code, text = client.rcpt("refuse@example.test")
        assert code == 550 and text.startswith(b"5.1.1 ")
        code, _ = client.rcpt(unique("refuse", "example.org"))
        assert code == 550
        code, _ = client.rcpt("refuse-not@example.test")
        assert code == 250
        code, text = client.rcpt("tempfail@example.com")
        assert code == 450 and text.startswith(b"4.2.0 ")
        code, text = client.rcpt("someone@not-a-test-domain.invalid")
        assert code == 554 and text.startswith(b"5.7.1 ")
        client.rset()

        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(unique("from"), ["refuse@example.test"], b"Subject: x\r\n\r\nx\r\n")
        assert refused.value.recipients["refuse@example.test"][0] == 550


def test_rejections_at_mail_and_after_data(postfix_server: PostfixServer) -> None:
    with smtplib.SMTP(postfix_server.host, postfix_server.port, timeout=10) as client:
        client.ehlo()
        code, text = client.mail("refuse-sender@example.test")
        assert code == 553 and text.startswith(b"5.7.1 ")
        code, text = client.mail("tempfail-sender@example.test")
        assert code == 451 and text.startswith(b"4.3.0 ")

        too_big = postfix_server.message_size_limit + 1
        code, text = client.mail(unique("from"), [f"SIZE={too_big}"])
        assert code == 552 and text.startswith(b"5.3.4 ")

        for local, expected in (("reject-data", 550), ("tempfail-data", 451)):
            with pytest.raises(smtplib.SMTPDataError) as rejected:
                client.sendmail(unique("from"), [unique(local)], b"Subject: x\r\n\r\nx\r\n")
            assert rejected.value.smtp_code == expected
            client.rset()


def test_dsn_success_notice_is_delivered_to_the_sender(postfix_server: PostfixServer) -> None:
    sender, recipient = unique("dsn-sender"), unique("dsn-rcpt")
    with smtplib.SMTP(postfix_server.host, postfix_server.port, timeout=10) as client:
        client.sendmail(
            sender,
            [recipient],
            b"Subject: dsn\r\n\r\nbody\r\n",
            mail_options=["RET=HDRS", "ENVID=mailwire-test-1"],
            rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;" + recipient],
        )
    assert postfix_server.message(to=recipient).content == b"Subject: dsn\n\nbody\n"
    notice = postfix_server.message(to=sender)
    assert notice.sender == ""  # the null sender <>
    assert b"multipart/report; report-type=delivery-status" in notice.content
    assert b"Original-Envelope-Id: mailwire-test-1" in notice.content
    assert b"Action: delivered" in notice.content


def test_smtputf8_address(postfix_server: PostfixServer) -> None:
    recipient = f"jörg+{uuid.uuid4().hex[:8]}@example.test"
    message = "From: <jörg@example.test>\r\nSubject: grüße\r\n\r\nß\r\n".encode()
    with smtplib.SMTP(postfix_server.host, postfix_server.port, timeout=10) as client:
        client.sendmail("jörg@example.test", [recipient], message, mail_options=["SMTPUTF8"])
    delivered = postfix_server.message(to=recipient)
    assert delivered.recipient == recipient
    assert delivered.protocol == "UTF8SMTP"  # Postfix's name for SMTPUTF8 + ESMTP
    assert delivered.content == as_stored(message)


def test_starttls_with_the_ca(postfix_tls_server: PostfixServer) -> None:
    server = postfix_tls_server
    assert server.ca_file is not None and server.ca_file.is_file()
    recipient = unique("tls")
    message = b"Subject: over TLS\r\n\r\nsecret\r\n"
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.starttls(context=server.client_context())
        assert code == 220
        assert isinstance(client.sock, ssl.SSLSocket)
        client.ehlo()
        for extension in EXTENSIONS:
            assert client.has_extn(extension), extension
        assert not client.has_extn("starttls")
        client.sendmail(unique("from"), [recipient], message)
    delivered = server.message(to=recipient)
    assert delivered.protocol == "ESMTPS"
    assert delivered.content == as_stored(message)


def test_starttls_refuses_an_untrusting_client(postfix_tls_server: PostfixServer) -> None:
    with smtplib.SMTP(postfix_tls_server.host, postfix_tls_server.port, timeout=10) as client:
        client.ehlo()
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(context=ssl.create_default_context())  # system CAs only


def test_implicit_tls_port(postfix_tls_server: PostfixServer) -> None:
    server = postfix_tls_server
    assert server.implicit_tls_port is not None
    recipient = unique("smtps")
    with smtplib.SMTP_SSL(
        server.host, server.implicit_tls_port, context=server.client_context(), timeout=10
    ) as client:
        client.ehlo()
        assert client.has_extn("chunking")
        assert not client.has_extn("starttls")
        client.sendmail(unique("from"), [recipient], b"Subject: smtps\r\n\r\nx\r\n")
    assert server.message(to=recipient).protocol == "ESMTPS"


def test_clear_and_timeout(postfix_server: PostfixServer) -> None:
    recipient = unique("clear")
    with smtplib.SMTP(postfix_server.host, postfix_server.port, timeout=10) as client:
        client.sendmail(unique("from"), [recipient], b"Subject: c\r\n\r\nc\r\n")
    postfix_server.message(to=recipient)
    postfix_server.clear()
    assert postfix_server.delivered() == []
    with pytest.raises(AssertionError, match="0 of 1 message"):
        postfix_server.messages(0.2, to=recipient)
    assert "postfix-mailwire-test/smtpd" in postfix_server.log()


def test_original_content_keeps_the_clients_own_received_header(tmp_path: Path) -> None:
    raw = (
        b"Return-Path: <a@example.test>\n"
        b"X-Original-To: b@example.test\n"
        b"Delivered-To: b@example.test\n"
        b"Received: from x (unknown [127.0.0.1])\n"
        b"\tby mail.example.test (Postfix) with ESMTP id ABC123\n"
        b"\tfor <b@example.test>; Fri, 27 Nov 2026 09:37:11 +0000 (UTC)\n"
        b"Received: from the client's own relay\n"
        b"Subject: s\n\nbody\n"
    )
    message = DeliveredMessage(tmp_path / "x", raw)
    assert original_content(raw) == b"Received: from the client's own relay\nSubject: s\n\nbody\n"
    assert (message.sender, message.recipient, message.queue_id) == (
        "a@example.test",
        "b@example.test",
        "ABC123",
    )
    with pytest.raises(ValueError):
        original_content(b"Subject: not delivered by Postfix\n\nx\n")


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [("true", pytest.fail.Exception), ("", pytest.skip.Exception)],
)
def test_missing_postfix_skips_or_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(postfix_support, "_SBIN_PATH", str(tmp_path))
    with pytest.raises(outcome, match="Postfix is not installed"):
        postfix_support.start_postfix()
