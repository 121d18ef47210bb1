"""Fields mailwire adds: Date and Message-ID to message objects that lack them, From from the
default sender; raw messages are sent as written."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Callable
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime

import pytest

from mailwire import SecurityOptions, SmtpClient
from mailwire.devserver import DevServer
from mailwire.errors import MessageError
from mailwire.message import prepare
from mailwire.protocol.addresses import Mailbox

MESSAGE_ID = re.compile(rb"\r\nMessage-ID: <[0-9a-f]{32}@([^>]+)>\r\n")


def written(message: Message, **options: object) -> bytes:
    return b"".join(prepare(message, **options).chunks)  # type: ignore[arg-type]


def make(**headers: str) -> EmailMessage:
    message = EmailMessage()
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("body")
    return message


def test_date_and_message_id_are_added_at_the_authors_domain() -> None:
    sent = written(make(From="Alice <alice@mail.example.com>", To="b@example.org"))
    match = MESSAGE_ID.search(sent)
    assert match is not None and match.group(1) == b"mail.example.com"
    date = re.search(rb"\r\nDate: ([^\r]+)\r\n", sent)
    assert date is not None and parsedate_to_datetime(date.group(1).decode()).tzinfo
    assert socket.gethostname().encode() not in sent.split(b"\r\n\r\n")[0]


def test_message_ids_are_unique() -> None:
    message = make(From="a@example.com", To="b@example.org")
    ids = {MESSAGE_ID.search(written(message)).group(0) for _ in range(50)}  # type: ignore[union-attr]
    assert len(ids) == 50


def test_existing_date_and_message_id_are_kept() -> None:
    message = make(From="a@example.com", To="b@example.org",
                   Date="Mon, 01 Jan 2024 00:00:00 +0000", Message_ID="<given@example.com>")
    sent = written(message)
    assert sent.count(b"\r\nDate:") == 1 and b"Date: Mon, 01 Jan 2024 00:00:00 +0000" in sent
    assert sent.count(b"\r\nMessage-ID:") == 1 and b"<given@example.com>" in sent


def test_a_dkim_signed_message_is_not_changed() -> None:
    message = make(From="a@example.com", To="b@example.org",
                   DKIM_Signature="v=1; a=rsa-sha256; d=example.com; s=s; h=from:to:date; b=x")
    sent = written(message)
    assert b"\r\nDate:" not in sent and b"\r\nMessage-ID:" not in sent


def test_the_callers_message_is_not_changed() -> None:
    message = make(From="a@example.com", To="b@example.org")
    before = list(message.items())
    written(message, default_sender="d@example.com")
    assert list(message.items()) == before
    assert message["Date"] is None and message["Message-ID"] is None


def test_message_id_domain_falls_back_to_the_envelope_sender_then_localhost() -> None:
    message = make(To="b@example.org")
    sent = written(message, sender="bounce@lists.example.net")
    assert MESSAGE_ID.search(sent).group(1) == b"lists.example.net"  # type: ignore[union-attr]
    sent = written(message, sender="<>")
    assert MESSAGE_ID.search(sent).group(1) == b"localhost"  # type: ignore[union-attr]


def test_internationalized_domain_in_message_id_is_ascii() -> None:
    sent = written(make(From="zoë@bücher.de", To="b@example.org"))
    assert MESSAGE_ID.search(sent).group(1) == b"xn--bcher-kva.de"  # type: ignore[union-attr]


def test_compat32_messages_get_them_too() -> None:
    message = email.message_from_bytes(b"From: a@example.com\r\nTo: b@example.org\r\n\r\nx\r\n")
    sent = written(message)
    assert b"\r\nDate: " in sent and MESSAGE_ID.search(sent) is not None


@pytest.mark.parametrize("raw", [
    b"From: a@example.com\r\nTo: b@example.org\r\n\r\nbody\r\n",
    b"To: b@example.org\r\n\r\nbody\r\n",
])
def test_raw_messages_are_sent_as_written(raw: bytes) -> None:
    prepared = prepare(raw, default_sender="d@example.com")
    assert b"".join(prepared.chunks) == raw


# -- the default sender ---------------------------------------------------------------------


def test_default_sender_becomes_from_and_the_envelope_sender() -> None:
    message = make(To="b@example.org")
    prepared = prepare(message, default_sender="Desk <desk@example.com>")
    assert prepared.sender == Mailbox("desk@example.com")
    sent = b"".join(prepared.chunks)
    assert b"\r\nFrom: Desk <desk@example.com>\r\n" in b"\r\n" + sent
    assert MESSAGE_ID.search(sent).group(1) == b"example.com"  # type: ignore[union-attr]


def test_the_messages_own_from_wins_over_the_default_sender() -> None:
    prepared = prepare(make(From="a@example.com", To="b@example.org"),
                       default_sender="desk@example.com")
    assert prepared.sender == Mailbox("a@example.com")
    assert b"desk@example.com" not in b"".join(prepared.chunks)


def test_an_explicit_sender_is_the_envelope_and_the_default_the_missing_from() -> None:
    prepared = prepare(make(To="b@example.org"), sender="bounce@example.net",
                       default_sender="desk@example.com")
    assert prepared.sender == Mailbox("bounce@example.net")
    assert b"From: desk@example.com" in b"".join(prepared.chunks)


def test_raw_message_without_from_gets_the_default_as_envelope_sender_only() -> None:
    raw = b"To: b@example.org\r\n\r\nbody\r\n"
    prepared = prepare(raw, default_sender="desk@example.com")
    assert prepared.sender == Mailbox("desk@example.com")
    assert b"".join(prepared.chunks) == raw


def test_raw_message_sender_header_wins_over_the_default() -> None:
    raw = b"Sender: s@example.com\r\nTo: b@example.org\r\n\r\nbody\r\n"
    assert prepare(raw, default_sender="desk@example.com").sender == Mailbox("s@example.com")


@pytest.mark.parametrize("bad", ["not an address", "a@example.com, b@example.com",
                                 "a@example.com\r\nBcc: x@example.com"])
def test_a_bad_default_sender_is_refused(bad: str) -> None:
    with pytest.raises(MessageError):
        prepare(make(To="b@example.org"), default_sender=bad)


def test_no_sender_at_all_is_still_an_error() -> None:
    with pytest.raises(MessageError, match="no sender"):
        prepare(make(To="b@example.org"))


def test_send_mail_arrives_with_date_and_message_id(
    server_pool: Callable[..., DevServer]
) -> None:
    server = server_pool()
    with SmtpClient(server.host, server.port, security=SecurityOptions.NONE,
                    timeout=5.0) as client:
        client.send_mail("a@example.com", "b@example.org", "Hello", "body")
    (received,) = server.wait_for_messages(1)
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert parsed["Date"] is not None
    assert str(parsed["Message-ID"]).endswith("@example.com>")


def test_a_message_the_email_package_cannot_write_is_a_message_error() -> None:
    # Deeply nested comments make the email package's own header parser recurse too deeply
    # when it refolds the field; that is mailwire's MessageError, not a bare RecursionError.
    raw = b"From: a@example.com\r\nTo: b@example.com " + b"(" * 5000 + b"\r\n\r\nx\r\n"
    message = email.message_from_bytes(raw, policy=email.policy.default)
    with pytest.raises(MessageError, match="recursed too deeply"):
        prepare(message)
