"""Envelope from headers, Bcc stripping and chunk streams, for every kind of message input."""

from __future__ import annotations

import email
import email.policy
import io
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailwire import message as message_module
from mailwire.errors import MessageError, SmtpUsageError
from mailwire.message import MAX_HEADER_SECTION, MessageInput, PreparedMessage, prepare
from mailwire.protocol.addresses import Mailbox

RAW = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.com, Carol <carol@example.com>\r\n"
    b"Cc: dan@example.com\r\n"
    b"Bcc: eve@example.com,\r\n"
    b"  Frank <frank@example.com>\r\n"
    b"Subject: Bcc test\r\n"
    b"\r\n"
    b"Body line one\r\n"
    b"Bcc: this line is in the body and stays\r\n"
)
SENT = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.com, Carol <carol@example.com>\r\n"
    b"Cc: dan@example.com\r\n"
    b"Subject: Bcc test\r\n"
    b"\r\n"
    b"Body line one\r\n"
    b"Bcc: this line is in the body and stays\r\n"
)
ALL_RECIPIENTS = [
    "bob@example.com",
    "carol@example.com",
    "dan@example.com",
    "eve@example.com",
    "frank@example.com",
]


def mailboxes(*addresses: str) -> list[Mailbox]:
    return [Mailbox(a) for a in addresses]


def content(prepared: PreparedMessage) -> bytes:
    return b"".join(prepared.chunks)


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# One factory per kind of raw input; each gets the message bytes and a temporary folder.
RawFactory = Callable[[bytes, Path], MessageInput]


def _as_path(data: bytes, folder: Path) -> MessageInput:
    path = folder / "message.eml"
    path.write_bytes(data)
    return path


RAW_FACTORIES: dict[str, RawFactory] = {
    "bytes": lambda data, _: data,
    "bytearray": lambda data, _: bytearray(data),
    "memoryview": lambda data, _: memoryview(data),
    "path": _as_path,
    "file-object": lambda data, _: io.BytesIO(data),
    "iterator-7": lambda data, _: chunked(data, 7),
    "iterator-1": lambda data, _: chunked(data, 1),
    "list-of-chunks": lambda data, _: [data[:40], data[40:41], data[41:]],
}


@pytest.fixture(params=list(RAW_FACTORIES), ids=list(RAW_FACTORIES))
def raw_factory(request: pytest.FixtureRequest) -> RawFactory:
    factory: RawFactory = RAW_FACTORIES[request.param]
    return factory


# -- envelope from headers -------------------------------------------------------------------


def test_envelope_and_bcc_stripping_for_every_raw_input(
    raw_factory: RawFactory, tmp_path: Path
) -> None:
    prepared = prepare(raw_factory(RAW, tmp_path))
    assert prepared.sender == Mailbox("alice@example.com")
    assert prepared.recipients == mailboxes(*ALL_RECIPIENTS)
    assert not prepared.needs_smtputf8
    sent = content(prepared)
    assert sent == SENT
    assert b"eve@example.com" not in sent
    assert b"frank@example.com" not in sent
    if prepared.size is not None:
        assert prepared.size == len(sent)


def test_sizes_known_for_bytes_and_paths(tmp_path: Path) -> None:
    assert prepare(RAW).size == len(SENT)
    assert prepare(_as_path(RAW, tmp_path)).size == len(SENT)
    assert prepare(io.BytesIO(RAW)).size is None
    assert prepare(iter([RAW])).size is None


def test_sender_header_wins_over_from() -> None:
    raw = b"From: a@example.com\r\nSender: s@example.com\r\nTo: b@example.com\r\n\r\nx\r\n"
    assert prepare(raw).sender == Mailbox("s@example.com")


def test_first_from_address_when_several() -> None:
    raw = b"From: a@example.com, b@example.com\r\nTo: c@example.com\r\n\r\nx\r\n"
    assert prepare(raw).sender == Mailbox("a@example.com")


def test_recipients_deduplicated_in_order() -> None:
    raw = (b"From: a@example.com\r\nTo: b@example.com, c@example.com\r\n"
           b"Cc: b@example.com\r\nBcc: c@example.com, d@example.com\r\n\r\nx\r\n")
    assert prepare(raw).recipients == mailboxes("b@example.com", "c@example.com", "d@example.com")


def test_only_bcc_recipients() -> None:
    raw = b"From: a@example.com\r\nBcc: hidden@example.com\r\nSubject: s\r\n\r\nx\r\n"
    prepared = prepare(raw)
    assert prepared.recipients == mailboxes("hidden@example.com")
    assert content(prepared) == b"From: a@example.com\r\nSubject: s\r\n\r\nx\r\n"


def test_group_syntax_and_display_names() -> None:
    raw = (b'From: "Doe, Jane" <jane@example.com>\r\n'
           b"To: friends: b@example.com, c@example.com;\r\n\r\nx\r\n")
    prepared = prepare(raw)
    assert prepared.sender == Mailbox("jane@example.com")
    assert prepared.recipients == mailboxes("b@example.com", "c@example.com")


# -- Resent-* --------------------------------------------------------------------------------

RESENT = (
    b"Resent-Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n"
    b"Resent-From: forwarder@example.com\r\n"
    b"Resent-To: new@example.com\r\n"
    b"Resent-Cc: newcc@example.com\r\n"
    b"Resent-Bcc: newbcc@example.com\r\n"
    b"From: original@example.com\r\n"
    b"To: old@example.com\r\n"
    b"Bcc: oldbcc@example.com\r\n"
    b"\r\n"
    b"x\r\n"
)


def test_resent_headers_give_the_envelope() -> None:
    prepared = prepare(RESENT)
    assert prepared.sender == Mailbox("forwarder@example.com")
    assert prepared.recipients == mailboxes(
        "new@example.com", "newcc@example.com", "newbcc@example.com"
    )
    sent = content(prepared)
    assert b"newbcc@example.com" not in sent
    assert b"oldbcc@example.com" not in sent
    assert b"Resent-To: new@example.com\r\n" in sent
    assert b"To: old@example.com\r\n" in sent


def test_resent_sender_wins_over_resent_from() -> None:
    raw = RESENT.replace(b"Resent-From:", b"Resent-Sender: rs@example.com\r\nResent-From:")
    assert prepare(raw).sender == Mailbox("rs@example.com")


def test_resent_for_email_message() -> None:
    parsed = email.message_from_bytes(RESENT, policy=email.policy.default)
    prepared = prepare(parsed)
    assert prepared.sender == Mailbox("forwarder@example.com")
    assert prepared.recipients == mailboxes(
        "new@example.com", "newcc@example.com", "newbcc@example.com"
    )
    sent = content(prepared)
    assert b"Bcc:" not in sent
    assert b"newbcc@example.com" not in sent


def test_only_the_newest_resent_block_is_used() -> None:
    # A message resent twice: the older block's recipients already got it. The newest block is
    # on top (RFC 5322 3.6.6); sending to the old Resent-To again would deliver it twice.
    raw = (
        b"Resent-Date: Tue, 3 Jan 2023 10:00:00 +0000\r\n"
        b"Resent-From: second@example.com\r\n"
        b"Resent-To: now@example.com\r\n"
        b"Resent-Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n"
        b"Resent-From: first@example.com\r\n"
        b"Resent-To: before@example.com\r\n"
        b"From: original@example.com\r\n"
        b"To: old@example.com\r\n\r\nx\r\n"
    )
    try:
        prepared = prepare(raw)
    except MessageError:
        return  # refusing an ambiguous message (as smtplib does) is fine too
    assert prepared.sender == Mailbox("second@example.com")
    assert prepared.recipients == mailboxes("now@example.com")


# -- EmailMessage ----------------------------------------------------------------------------


def make_email() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = "bob@example.com, Carol <carol@example.com>"
    msg["Cc"] = "dan@example.com"
    msg["Bcc"] = "eve@example.com, Frank <frank@example.com>"
    msg["Subject"] = "Bcc test"
    msg.set_content("Hello\n.dot line\n")
    return msg


def test_email_message_envelope_and_bcc() -> None:
    prepared = prepare(make_email())
    assert prepared.sender == Mailbox("alice@example.com")
    assert prepared.recipients == mailboxes(*ALL_RECIPIENTS)
    sent = content(prepared)
    assert b"\r\nBcc:" not in sent
    assert b"eve@example.com" not in sent
    assert b"frank@example.com" not in sent
    assert b"To: bob@example.com, Carol <carol@example.com>\r\n" in sent
    assert sent.endswith(b"\r\n\r\nHello\r\n.dot line\r\n")
    assert b"\n" not in sent.replace(b"\r\n", b"")
    assert prepared.size == len(sent)
    assert prepared.eight_bit is False
    assert not prepared.needs_smtputf8


def test_email_message_with_folded_bcc() -> None:
    parsed = email.message_from_bytes(RAW, policy=email.policy.default)
    prepared = prepare(parsed)
    assert prepared.recipients == mailboxes(*ALL_RECIPIENTS)
    sent = content(prepared)
    assert b"eve@example.com" not in sent
    assert b"frank@example.com" not in sent
    assert b"\r\nBcc: this line is in the body and stays\r\n" in sent


def test_email_message_compat32() -> None:
    parsed = email.message_from_bytes(RAW)  # the legacy compat32 policy
    prepared = prepare(parsed)
    assert prepared.recipients == mailboxes(*ALL_RECIPIENTS)
    sent = content(prepared)
    assert b"frank@example.com" not in sent
    assert b"\r\n" in sent
    assert b"\n" not in sent.replace(b"\r\n", b"")


def test_resent_bcc_removed_from_email_message() -> None:
    msg = make_email()
    msg["Resent-Date"] = "Mon, 2 Jan 2023 10:00:00 +0000"
    msg["Resent-From"] = "fwd@example.com"
    msg["Resent-To"] = "x@example.com"
    msg["Resent-Bcc"] = "secret@example.com"
    prepared = prepare(msg)
    assert prepared.recipients == mailboxes("x@example.com", "secret@example.com")
    sent = content(prepared)
    assert b"secret@example.com" not in sent
    assert b"eve@example.com" not in sent


def test_callers_email_message_is_not_modified() -> None:
    msg = make_email()
    before = msg.as_bytes()
    headers_before = list(msg.items())
    prepared = prepare(msg)
    content(prepared)
    assert msg["Bcc"] == "eve@example.com, Frank <frank@example.com>"
    assert list(msg.items()) == headers_before
    assert msg.as_bytes() == before


def test_callers_multipart_message_is_not_modified() -> None:
    msg = make_email()
    msg.add_attachment(b"\x00\x01binary", maintype="application", subtype="octet-stream",
                       filename="a.bin")
    before = msg.as_bytes()
    content(prepare(msg))
    assert msg.as_bytes() == before
    assert msg["Bcc"] is not None


# -- explicit envelope -----------------------------------------------------------------------


def test_explicit_sender_and_recipients_override(raw_factory: RawFactory, tmp_path: Path) -> None:
    prepared = prepare(
        raw_factory(RAW, tmp_path),
        sender="bounce@example.org",
        recipients=["only@example.org", "also@example.org"],
    )
    assert prepared.sender == Mailbox("bounce@example.org")
    assert prepared.recipients == mailboxes("only@example.org", "also@example.org")
    # Bcc is stripped even when the envelope is given.
    assert content(prepared) == SENT


def test_explicit_recipient_as_a_string() -> None:
    prepared = prepare(RAW, recipients="single@example.org")
    assert prepared.sender == Mailbox("alice@example.com")
    assert prepared.recipients == mailboxes("single@example.org")


def test_explicit_envelope_for_email_message() -> None:
    prepared = prepare(make_email(), sender="<>", recipients=["x@example.org"])
    assert prepared.sender == Mailbox("")
    assert prepared.recipients == mailboxes("x@example.org")
    assert b"eve@example.com" not in content(prepared)


def test_explicit_envelope_without_headers() -> None:
    prepared = prepare(b"just a body\r\n", sender="a@example.com", recipients="b@example.com")
    assert prepared.recipients == mailboxes("b@example.com")
    assert content(prepared) == b"just a body\r\n"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"To: b@example.com\r\n\r\nx\r\n",
        b"From: \r\nTo: b@example.com\r\n\r\nx\r\n",
        b"",
    ],
)
def test_no_sender(raw: bytes) -> None:
    with pytest.raises(MessageError, match="no sender"):
        prepare(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@example.com\r\n\r\nx\r\n",
        b"From: a@example.com\r\nTo: \r\n\r\nx\r\n",
        b"From: a@example.com\r\nSubject: To: b@example.com\r\n\r\nTo: c@example.com\r\n",
    ],
)
def test_no_recipients(raw: bytes) -> None:
    with pytest.raises(MessageError, match="no recipients"):
        prepare(raw)


def test_no_recipients_explicit_empty_list() -> None:
    with pytest.raises(MessageError):
        prepare(RAW, recipients=[])


def test_no_sender_email_message() -> None:
    msg = EmailMessage()
    msg["To"] = "b@example.com"
    with pytest.raises(MessageError):
        prepare(msg)


def test_resent_without_resent_recipients() -> None:
    raw = b"Resent-Date: Mon, 2 Jan 2023 10:00:00 +0000\r\nResent-From: f@example.com\r\n" + (
        b"From: a@example.com\r\nTo: b@example.com\r\n\r\nx\r\n"
    )
    with pytest.raises(MessageError):
        prepare(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@example.com\r\nTo: not an address\r\n\r\nx\r\n",
        # Invalid in the header; must not become the valid, different "b@example.com".
        b"From: a@example.com\r\nTo: <b@exa mple.com>\r\n\r\nx\r\n",
        b"From: a@example.com\r\nTo: b@example..com\r\n\r\nx\r\n",
        b"From: bad@@example.com\r\nTo: b@example.com\r\n\r\nx\r\n",
        b"From: a@example.com\r\nCc: c@-bad.example\r\n\r\nx\r\n",
    ],
)
def test_invalid_address_in_a_header(raw: bytes) -> None:
    with pytest.raises(SmtpUsageError):
        prepare(raw)


@pytest.mark.parametrize(
    ("sender", "recipients"),
    [
        ("bad address@example.com", ["b@example.com"]),
        ("a@example.com", ["b@example.com\r\nRCPT TO:<c@example.com>"]),
        ("a@example.com\r\nRSET", ["b@example.com"]),
        ("a@example.com", ['"x\r\ny"@example.com']),
    ],
)
def test_invalid_explicit_envelope(sender: str, recipients: list[str]) -> None:
    with pytest.raises(SmtpUsageError):
        prepare(RAW, sender=sender, recipients=recipients)


def test_missing_file() -> None:
    with pytest.raises(SmtpUsageError, match="cannot read"):
        prepare(Path("/nonexistent/message.eml"))


# -- SMTPUTF8 --------------------------------------------------------------------------------


def test_non_ascii_address_in_email_message_needs_smtputf8() -> None:
    msg = EmailMessage()
    msg["From"] = "josé@example.com"
    msg["To"] = "用户@例子.广告"
    msg.set_content("x")
    prepared = prepare(msg)
    assert prepared.sender == Mailbox("josé@example.com")
    assert prepared.recipients == mailboxes("用户@例子.广告")
    assert prepared.needs_smtputf8
    assert "josé@example.com".encode() in content(prepared)


def test_non_ascii_explicit_recipient_needs_smtputf8() -> None:
    prepared = prepare(RAW, recipients=["josé@example.com"])
    assert prepared.needs_smtputf8
    prepared = prepare(make_email(), sender="pelé@example.com")
    assert prepared.needs_smtputf8


def test_non_ascii_address_in_raw_utf8_headers() -> None:
    # A raw message whose headers are UTF-8 (RFC 6532): the envelope must be the same address,
    # not one with U+FFFD replacement characters.
    raw = "From: josé@example.com\r\nTo: Zoë <zoë@bücher.de>\r\n\r\nx\r\n".encode()
    prepared = prepare(raw)
    assert prepared.sender == Mailbox("josé@example.com")
    assert prepared.recipients == mailboxes("zoë@bücher.de")
    assert prepared.needs_smtputf8


def test_invalid_utf8_address_in_raw_headers_is_refused() -> None:
    # Latin-1 bytes are not an RFC 6532 address: refuse rather than send to "b\ufffd@...".
    raw = b"From: a@example.com\r\nTo: b\xe9@example.com\r\n\r\nx\r\n"
    with pytest.raises(SmtpUsageError):
        prepare(raw)


def test_non_ascii_header_text_in_raw_message_needs_smtputf8() -> None:
    raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: Grüße\r\n\r\nx\r\n".encode()
    assert prepare(raw).needs_smtputf8


# -- header section cap ----------------------------------------------------------------------


def test_header_section_without_end_larger_than_the_cap() -> None:
    raw = b"From: a@example.com\r\nTo: b@example.com\r\nX-Long: " + b"a" * MAX_HEADER_SECTION
    with pytest.raises(MessageError, match="header section"):
        prepare(raw)


def test_header_section_without_end_larger_than_the_cap_stream() -> None:
    def endless_header() -> Iterator[bytes]:
        yield b"From: a@example.com\r\nTo: b@example.com\r\nX-Long: "
        while True:
            yield b"a" * 65536

    with pytest.raises(MessageError, match="header section"):
        prepare(endless_header())


@pytest.mark.parametrize(
    "kind", ["bytes", "iterator-64k", "iterator-256k", "file-object"]
)
def test_header_section_larger_than_the_cap_is_refused_however_it_is_chunked(kind: str) -> None:
    # The header section ends (blank line) 70 000 bytes after the cap: it is over the cap
    # whatever the chunking, so every input form must refuse it alike.
    raw = (b"From: a@example.com\r\nTo: b@example.com\r\nX-Long: " + b"a" * (MAX_HEADER_SECTION
           + 70_000) + b"\r\n\r\nbody\r\n")
    inputs: dict[str, MessageInput] = {
        "bytes": raw,
        "iterator-64k": chunked(raw, 65536),
        "iterator-256k": chunked(raw, message_module.CHUNK_SIZE),
        "file-object": io.BytesIO(raw),
    }
    with pytest.raises(MessageError, match="header section"):
        prepare(inputs[kind])


def test_header_section_just_under_the_cap_is_fine() -> None:
    head = b"From: a@example.com\r\nTo: b@example.com\r\nX-Long: "
    raw = head + b"a" * (MAX_HEADER_SECTION - len(head) - 4) + b"\r\n\r\nbody\r\n"
    prepared = prepare(raw)
    assert content(prepared).endswith(b"\r\n\r\nbody\r\n")


# -- the body is streamed --------------------------------------------------------------------


def test_body_is_not_read_before_it_is_sent() -> None:
    read: list[int] = []

    def source() -> Iterator[bytes]:
        yield b"From: a@example.com\r\nTo: b@example.com\r\n\r\n"
        for index in range(5):
            read.append(index)
            yield b"line %d\r\n" % index

    prepared = prepare(source())
    assert read == []  # preparing read the header section only
    assert content(prepared) == (
        b"From: a@example.com\r\nTo: b@example.com\r\n\r\n"
        + b"".join(b"line %d\r\n" % i for i in range(5))
    )
    assert read == [0, 1, 2, 3, 4]


def test_large_bytes_message_is_chunked() -> None:
    body = b"x" * (3 * message_module.CHUNK_SIZE + 10)
    raw = b"From: a@example.com\r\nTo: b@example.com\r\n\r\n" + body
    chunks = list(prepare(raw).chunks)
    assert len(chunks) > 1
    assert all(len(chunk) <= message_module.CHUNK_SIZE for chunk in chunks[1:])
    assert b"".join(chunks) == raw


def test_bare_lf_headers() -> None:
    # The header section is normalized as the framer would; the wire form is the same.
    raw = RAW.replace(b"\r\n", b"\n")
    prepared = prepare(raw)
    assert prepared.recipients == mailboxes(*ALL_RECIPIENTS)
    assert content(prepared) == SENT


@pytest.mark.parametrize(
    "bcc",
    [
        b"BCC: x@example.com\r\n",
        b"bcc:x@example.com\r\n",
        b"Bcc : x@example.com\r\n",
        b"Bcc:\r\n x@example.com\r\n",
        b"Bcc: y@example.com,\r\n\tx@example.com,\r\n  z@example.com\r\n",
        b"Resent-Bcc: x@example.com\r\n",
    ],
)
def test_bcc_spellings_are_stripped(bcc: bytes) -> None:
    raw = b"From: a@example.com\r\nTo: b@example.com\r\n" + bcc + b"Subject: s\r\n\r\nx\r\n"
    prepared = prepare(raw, recipients=["b@example.com"])
    assert content(prepared) == (
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n\r\nx\r\n"
    )


def test_bcc_as_the_last_header() -> None:
    raw = b"From: a@example.com\r\nTo: b@example.com\r\nBcc: c@example.com\r\n\r\nx\r\n"
    prepared = prepare(raw)
    assert prepared.recipients == mailboxes("b@example.com", "c@example.com")
    assert content(prepared) == b"From: a@example.com\r\nTo: b@example.com\r\n\r\nx\r\n"


def test_header_lookalikes_are_kept() -> None:
    raw = (b"From: a@example.com\r\nTo: b@example.com\r\nX-Bcc: keep@example.com\r\n"
           b"Subject: about Bcc: things\r\n\r\nx\r\n")
    prepared = prepare(raw)
    assert prepared.recipients == mailboxes("b@example.com")
    assert content(prepared) == raw
