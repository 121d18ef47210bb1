"""The reply parser: complete replies from any split of the byte stream, bounded, strict."""

from __future__ import annotations

import pytest

from mailwire.errors import SmtpProtocolError
from mailwire.protocol.replies import (
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_MAX_LINES,
    SEEN_REPLIES,
    Reply,
    ReplyParser,
)


def parse_all(data: bytes, parser: ReplyParser | None = None) -> list[Reply]:
    """Every complete reply in ``data``, fed in one piece."""
    parser = parser or ReplyParser()
    parser.feed(data)
    return drain(parser)


def drain(parser: ReplyParser) -> list[Reply]:
    replies: list[Reply] = []
    while (reply := parser.next_reply()) is not None:
        replies.append(reply)
    return replies


# -- single and multi-line replies -----------------------------------------------------------


def test_single_line_reply() -> None:
    assert parse_all(b"250 OK\r\n") == [Reply(250, ("OK",))]


def test_multi_line_reply() -> None:
    data = b"250-mail.example.com Hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
    (reply,) = parse_all(data)
    assert reply.code == 250
    assert reply.lines == ("mail.example.com Hello", "PIPELINING", "SIZE 1000")
    assert reply.text == "mail.example.com Hello\nPIPELINING\nSIZE 1000"


def test_several_replies_in_one_feed() -> None:
    data = b"250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Go ahead\r\n"
    replies = parse_all(data)
    assert [r.code for r in replies] == [250, 250, 354]


def test_incomplete_reply_waits_for_more() -> None:
    parser = ReplyParser()
    parser.feed(b"250-first\r\n250 sec")
    assert parser.next_reply() is None
    parser.feed(b"ond\r\n")
    assert parser.next_reply() == Reply(250, ("first", "second"))
    assert parser.next_reply() is None


def test_code_only_lines() -> None:
    assert parse_all(b"250\r\n") == [Reply(250, ("",))]
    assert parse_all(b"250-\r\n250\r\n") == [Reply(250, ("", ""))]
    assert parse_all(b"250 \r\n") == [Reply(250, ("",))]


def test_bare_lf_line_ends() -> None:
    assert parse_all(b"250-a\n250-b\r\n250 c\n") == [Reply(250, ("a", "b", "c"))]


def test_utf8_text_is_decoded() -> None:
    (reply,) = parse_all("250 Grüße\r\n".encode())
    assert reply.lines == ("Grüße",)


def test_reply_classification() -> None:
    assert Reply(250, ("x",)).is_positive
    assert Reply(354, ("x",)).is_positive
    assert Reply(421, ("x",)).is_transient
    assert not Reply(550, ("x",)).is_positive
    assert not Reply(550, ("x",)).is_transient
    assert Reply(250, ("a", "b")).describe() == "250 a / b"


# -- enhanced status codes (RFC 3463) --------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "line", "expected"),
    [
        (250, "2.1.0 Sender OK", "2.1.0"),
        (550, "5.7.1 Relaying denied", "5.7.1"),
        (451, "4.3.0 Try later", "4.3.0"),
        (250, "2.0.0", "2.0.0"),
        (552, "5.123.999 long fields", "5.123.999"),
        (250, "5.1.0 class does not match the code", None),
        (550, "2.1.0 class does not match the code", None),
        (250, "3.1.0 no such class", None),
        (250, "2.1 too short", None),
        (250, "2.1.0000 detail too long", None),
        (250, "2.1.0x no space after", None),
        (250, "OK 2.1.0", None),
        (250, "", None),
        # RFC 3463 digits are ASCII digits only.
        (250, "2.\u0661.\u0660 Arabic-Indic digits", None),
    ],
)
def test_enhanced_status_code(code: int, line: str, expected: str | None) -> None:
    assert Reply(code, (line,)).enhanced_code == expected


def test_enhanced_status_code_from_parsed_reply() -> None:
    (reply,) = parse_all(b"550-5.1.1 No such user\r\n550 5.1.1 Really\r\n")
    assert reply.enhanced_code == "5.1.1"
    assert reply.lines[0] == "5.1.1 No such user"


# -- any split gives the same replies --------------------------------------------------------

STREAM = (
    b"220 mail.example.com ESMTP ready\r\n"
    b"250-mail.example.com\r\n250-PIPELINING\n250-SIZE 10240000\r\n250 8BITMIME\r\n"
    b"250 2.1.0 OK\r\n"
    b"250\r\n"
    b"550-5.1.1 first\r\n550-\r\n550 5.1.1 last\r\n"
    b"354 Start mail input; end with <CRLF>.<CRLF>\n"
)


def test_every_split_offset_gives_the_same_replies() -> None:
    expected = parse_all(STREAM)
    assert [r.code for r in expected] == [220, 250, 250, 250, 550, 354]
    for offset in range(len(STREAM) + 1):
        parser = ReplyParser()
        parser.feed(STREAM[:offset])
        replies = drain(parser)
        parser.feed(STREAM[offset:])
        replies += drain(parser)
        assert replies == expected, offset
        assert parser.buffered == 0


def test_every_pair_of_split_offsets_gives_the_same_replies() -> None:
    data = STREAM[:120]
    expected = parse_all(data)
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1):
            parser = ReplyParser()
            replies: list[Reply] = []
            for piece in (data[:first], data[first:second], data[second:]):
                parser.feed(piece)
                replies += drain(parser)
            assert replies == expected, (first, second)


def test_byte_by_byte() -> None:
    parser = ReplyParser()
    replies: list[Reply] = []
    for byte in STREAM:
        parser.feed(bytes([byte]))
        replies += drain(parser)
    assert replies == parse_all(STREAM)


# -- caps ------------------------------------------------------------------------------------


def test_line_cap_raises_without_waiting_for_the_line_end() -> None:
    parser = ReplyParser(max_line_length=100)
    parser.feed(b"250 " + b"x" * 96)  # exactly 100 bytes: still allowed
    assert parser.next_reply() is None
    parser.feed(b"x")  # 101 bytes and no line end yet
    with pytest.raises(SmtpProtocolError, match="longer than 100"):
        parser.next_reply()


def test_line_cap_on_a_complete_line() -> None:
    assert parse_all(b"250 " + b"x" * 96 + b"\n", ReplyParser(max_line_length=100))
    with pytest.raises(SmtpProtocolError):
        parse_all(b"250 " + b"x" * 97 + b"\n", ReplyParser(max_line_length=100))


def test_default_line_cap() -> None:
    parser = ReplyParser()
    assert parser.max_line_length == DEFAULT_MAX_LINE_LENGTH
    parser.feed(b"250-" + b"a" * DEFAULT_MAX_LINE_LENGTH)
    with pytest.raises(SmtpProtocolError):
        parser.next_reply()


def test_line_count_cap_raises_without_waiting_for_the_last_line() -> None:
    parser = ReplyParser(max_lines=3)
    parser.feed(b"250-a\r\n250-b\r\n")
    assert parser.next_reply() is None
    parser.feed(b"250-c\r\n")  # a third line that promises a fourth: refused now
    with pytest.raises(SmtpProtocolError, match="longer than 3 lines"):
        parser.next_reply()


def test_line_count_cap_allows_exactly_max_lines() -> None:
    parser = ReplyParser(max_lines=3)
    assert parse_all(b"250-a\r\n250-b\r\n250 c\r\n", parser) == [Reply(250, ("a", "b", "c"))]


def test_default_line_count_cap() -> None:
    data = b"250-x\r\n" * DEFAULT_MAX_LINES
    with pytest.raises(SmtpProtocolError):
        parse_all(data)
    lines = b"250-x\r\n" * (DEFAULT_MAX_LINES - 1) + b"250 x\r\n"
    (reply,) = parse_all(lines)
    assert len(reply.lines) == DEFAULT_MAX_LINES


# -- garbage ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\r\n",
        b"\n",
        b"hello\r\n",
        b"25\r\n",
        b"25 x\r\n",
        b"2500 OK\r\n",
        b"250OK\r\n",
        b"250_OK\r\n",
        b"250\tOK\r\n",
        b" 250 OK\r\n",
        b"-250 OK\r\n",
        b"+OK\r\n",
        b"\xff\xfe\xfd\r\n",
        "\uff12\uff15\uff10 full-width digits\r\n".encode(),
        "\u0662\u0665\u0660 Arabic-Indic digits\r\n".encode(),
        b"\x00\x00\x00\r\n",
        b"HTTP/1.1 400 Bad Request\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n",  # a TLS record
    ],
)
def test_garbage_raises_protocol_error(data: bytes) -> None:
    with pytest.raises(SmtpProtocolError):
        parse_all(data)


@pytest.mark.parametrize("code", [b"000", b"099", b"100", b"199", b"600", b"999"])
def test_out_of_range_codes(code: bytes) -> None:
    with pytest.raises(SmtpProtocolError, match="out of range"):
        parse_all(code + b" text\r\n")


@pytest.mark.parametrize("code", [200, 250, 354, 421, 599])
def test_codes_in_range(code: int) -> None:
    assert parse_all(b"%d x\r\n" % code) == [Reply(code, ("x",))]


def test_code_changing_mid_reply() -> None:
    with pytest.raises(SmtpProtocolError, match="changed code"):
        parse_all(b"250-first\r\n251 second\r\n")
    with pytest.raises(SmtpProtocolError, match="changed code"):
        parse_all(b"250-first\r\n550-second\r\n550 third\r\n")


def test_garbage_after_a_good_reply() -> None:
    parser = ReplyParser()
    parser.feed(b"250 OK\r\ngarbage\r\n")
    assert parser.next_reply() == Reply(250, ("OK",))
    with pytest.raises(SmtpProtocolError):
        parser.next_reply()


# -- buffered ---------------------------------------------------------------------------------


def test_buffered_is_zero_when_everything_was_handed_out() -> None:
    parser = ReplyParser()
    assert parser.buffered == 0
    parser.feed(b"220 ready\r\n")
    assert parser.next_reply() is not None
    assert parser.buffered == 0


def test_buffered_counts_bytes_after_a_complete_reply() -> None:
    # The STARTTLS injection check: bytes after the 220 reply must be seen.
    parser = ReplyParser()
    parser.feed(b"220 Go ahead\r\n250 injected\r\n")
    assert parser.next_reply() == Reply(220, ("Go ahead",))
    assert parser.buffered == len(b"250 injected\r\n")


def test_buffered_counts_a_partial_line() -> None:
    parser = ReplyParser()
    parser.feed(b"220 Go ahead\r\n25")
    assert parser.next_reply() is not None
    assert parser.buffered == 2


def test_buffered_counts_received_bytes_of_a_pending_multiline_reply() -> None:
    # The docstring: "How many received bytes are not part of a reply handed out yet".
    parser = ReplyParser()
    parser.feed(b"250-hello\r\n250 par")
    assert parser.next_reply() is None
    assert parser.buffered == len(b"250-hello\r\n250 par")


def test_buffered_sees_an_injected_code_only_continuation_line() -> None:
    # After STARTTLS's 220, a plaintext "250-\r\n" is an injection. It is consumed into the
    # pending reply with empty text; ``buffered`` must still report it, or the check is blind.
    parser = ReplyParser()
    parser.feed(b"220 Go ahead\r\n250-\r\n")
    assert parser.next_reply() == Reply(220, ("Go ahead",))
    assert parser.next_reply() is None
    assert parser.buffered > 0
    assert parser.buffered == len(b"250-\r\n")


def test_clear_forgets_everything() -> None:
    parser = ReplyParser()
    parser.feed(b"250-first\r\n250 sec")
    assert parser.next_reply() is None
    parser.clear()
    assert parser.buffered == 0
    assert parse_all(b"220 fresh\r\n", parser) == [Reply(220, ("fresh",))]


def test_replies_seen_before_are_shared_and_the_store_stays_bounded() -> None:
    parser = ReplyParser()
    parser.feed(b"".join(b"250 2.0.0 queued as %d\r\n" % number for number in range(1000))
                + b"250 ok\r\n250 ok\r\n")
    replies = parser.next_replies(2000)
    assert [reply.lines[0] for reply in replies[:1000]] == [f"2.0.0 queued as {number}"
                                                            for number in range(1000)]
    assert replies[-2] is replies[-1] == Reply(250, ("ok",))
    assert len(parser._seen) <= SEEN_REPLIES
