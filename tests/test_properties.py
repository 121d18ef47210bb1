"""Hypothesis properties of the sans-I/O core: reply parsing, framing, commands, EHLO."""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mailwire.errors import MessageError, SmtpProtocolError, SmtpUsageError
from mailwire.message.header_section import split_header_section, split_whole
from mailwire.message.prepare import prepare
from mailwire.protocol import commands
from mailwire.protocol.addresses import Mailbox, parse_mailbox
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.framing import DataFramer, normalize_line_ends
from mailwire.protocol.replies import Reply, ReplyParser
from tests.test_framing import END_MARKER, expected_message, unstuff

FAST = settings(max_examples=300, deadline=None)


def cut(data: bytes, offsets: list[int]) -> list[bytes]:
    bounds = [0, *sorted(min(o, len(data)) for o in offsets), len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


# -- (a) the reply parser --------------------------------------------------------------------

MAX_LINE = 40
MAX_LINES = 4

_reply_line = st.builds(
    lambda code, sep, text, end: code + sep + text + end,
    st.sampled_from([b"250", b"220", b"354", b"550", b"199", b"600", b"25", b"2x0", b""]),
    st.sampled_from([b" ", b"-", b"", b"_"]),
    st.one_of(st.binary(max_size=8), st.just(b"x" * MAX_LINE), st.just("ü".encode())),
    st.sampled_from([b"\r\n", b"\n", b"", b"\r", b"\r\r\n"]),
)
reply_streams = st.one_of(
    st.binary(max_size=200),
    st.lists(_reply_line, max_size=12).map(b"".join),
    st.lists(st.one_of(_reply_line, st.binary(max_size=6)), max_size=12).map(b"".join),
)

Outcome = tuple[list[Reply], type[BaseException] | None]


def parse_pieces(pieces: list[bytes]) -> Outcome:
    """Feed the pieces in order, draining after each; check the memory bound as we go."""
    parser = ReplyParser(max_line_length=MAX_LINE, max_lines=MAX_LINES)
    replies: list[Reply] = []
    try:
        for piece in pieces:
            parser.feed(piece)
            while (reply := parser.next_reply()) is not None:
                replies.append(reply)
            # Once drained, the parser holds at most one partial line and fewer than
            # MAX_LINES pending lines, whatever the server sent.
            assert len(parser._data) - parser._position <= MAX_LINE
            assert len(parser._lines) < MAX_LINES
            assert all(len(line) <= MAX_LINE for line in parser._lines)
            assert parser.buffered <= MAX_LINE * (MAX_LINES + 1)
    except SmtpProtocolError as exc:
        return replies, type(exc)
    return replies, None


@FAST
@given(data=reply_streams, offsets=st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_reply_parser_same_result_for_any_split(data: bytes, offsets: list[int]) -> None:
    whole = parse_pieces([data])
    assert parse_pieces(cut(data, offsets)) == whole


@FAST
@given(data=reply_streams)
def test_reply_parser_byte_by_byte(data: bytes) -> None:
    assert parse_pieces([bytes([b]) for b in data]) == parse_pieces([data])


def parse_in_batches(pieces: list[bytes], sizes: list[int]) -> Outcome:
    """As ``parse_pieces``, taking replies with ``next_replies`` in batches of the given sizes
    (cycled); a batch never runs past a 421, and nothing is lost or taken twice."""
    parser = ReplyParser(max_line_length=MAX_LINE, max_lines=MAX_LINES)
    replies: list[Reply] = []
    turn = 0
    try:
        for piece in pieces:
            parser.feed(piece)
            while batch := parser.next_replies(most := sizes[turn % len(sizes)]):
                turn += 1
                assert len(batch) <= most
                assert all(reply.code != 421 for reply in batch[:-1])
                replies.extend(batch)
            assert parser.buffered <= MAX_LINE * (MAX_LINES + 1)
    except SmtpProtocolError as exc:
        return replies, type(exc)
    return replies, None


_closing_streams = st.lists(st.one_of(_reply_line, st.just(b"421 closing\r\n")),
                            max_size=12).map(b"".join)


@FAST
@given(data=st.one_of(reply_streams, _closing_streams),
       offsets=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
       sizes=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=4))
def test_reply_parser_batches_are_the_replies_in_order(data: bytes, offsets: list[int],
                                                       sizes: list[int]) -> None:
    assert parse_in_batches(cut(data, offsets), sizes) == parse_pieces(cut(data, offsets))


@FAST
@given(data=reply_streams)
def test_replies_are_well_formed(data: bytes) -> None:
    replies, _ = parse_pieces([data])
    for reply in replies:
        assert 200 <= reply.code <= 599
        assert 1 <= len(reply.lines) <= MAX_LINES
        assert reply.enhanced_code is None or reply.enhanced_code[0] == str(reply.code)[0]


# -- (b) framing -----------------------------------------------------------------------------

message_bytes = st.one_of(
    st.binary(max_size=120),
    st.lists(
        st.sampled_from([b"\r", b"\n", b".", b"a", b"\r\n", b"\r\n.\r\n", b"\x00", b".."]),
        max_size=40,
    ).map(b"".join),
)


def frame_pieces(pieces: list[bytes], *, dot_stuff: bool = True) -> bytes:
    framer = DataFramer(dot_stuff=dot_stuff)
    return b"".join(framer.frame(piece) for piece in pieces) + framer.finish()


@FAST
@given(data=message_bytes, offsets=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_framing_invariants_for_any_chunking(data: bytes, offsets: list[int]) -> None:
    wire = frame_pieces(cut(data, offsets))
    # Chunking does not matter.
    assert wire == frame_pieces([data])
    # What the server reads back is the normalized message.
    assert unstuff(wire) == expected_message(data)
    # No bare CR or LF anywhere.
    assert wire.count(b"\r") == wire.count(b"\n") == wire.count(b"\r\n")
    # The end-of-data sequence only at the very end.
    if wire != b".\r\n":
        assert wire.find(END_MARKER) == len(wire) - len(END_MARKER)


header_bytes = st.lists(
    st.sampled_from([b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\n\n", b"\r\r", b"Bcc: x@y",
                     b"To: a@example.org", b"a", b" ", b".", b"\xc3\xa9"]),
    max_size=30,
).map(b"".join)


@FAST
@given(data=header_bytes, offsets=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_a_message_read_whole_splits_as_one_read_in_pieces(data: bytes,
                                                            offsets: list[int]) -> None:
    """The one-piece reader of small in-memory messages agrees with the streaming one."""
    assume(not data.endswith(b"\r"))
    whole = split_whole(data)
    whole_rest = b"".join(whole.rest)
    one_piece = split_header_section(iter([data]))
    assert (whole.header, whole_rest, whole.growth) == (
        one_piece.header, b"".join(one_piece.rest), one_piece.growth)
    # In pieces, what follows the header section is passed on as read (framing normalizes it).
    pieces = split_header_section(iter(cut(data, offsets)))
    assert whole.header == pieces.header
    assert whole_rest == normalize_line_ends(b"".join(pieces.rest))


@FAST
@given(data=header_bytes)
def test_bytes_and_bytearray_messages_are_prepared_alike(data: bytes) -> None:
    """A small bytes message takes a shorter road than other inputs; it must end the same."""
    outcomes = []
    for message in (data, bytearray(data)):
        try:
            prepared = prepare(message, "a@example.org", ["b@example.org"])
        except MessageError as error:
            outcomes.append(str(error))
            continue
        outcomes.append((b"".join(prepared.chunks), prepared.size, prepared.eight_bit,
                         prepared.needs_smtputf8, prepared.normalized))
    assert outcomes[0] == outcomes[1]


@FAST
@given(data=message_bytes, offsets=st.lists(st.integers(min_value=0, max_value=200), max_size=8))
def test_bdat_framing_normalizes_only(data: bytes, offsets: list[int]) -> None:
    wire = frame_pieces(cut(data, offsets), dot_stuff=False)
    assert wire == frame_pieces([data], dot_stuff=False)
    # Without dot-stuffing the wire form is the normalized message: nothing added, no marker.
    assert wire == normalize_line_ends(data)
    assert wire.count(b"\r") == wire.count(b"\n") == wire.count(b"\r\n")


# -- (c) command serialization ---------------------------------------------------------------

arguments = st.one_of(
    st.text(max_size=30),
    st.text(
        alphabet=st.sampled_from(["a", ".", "@", "\r", "\n", "\x00", "\x7f", "\x1b", " ", "é"]),
        max_size=20,
    ),
)

Encoder = Callable[[str], bytes]
ENCODERS: list[Encoder] = [
    commands.ehlo,
    commands.helo,
    lambda t: commands.mail(Mailbox(t)),
    lambda t: commands.rcpt(Mailbox(t)),
    lambda t: commands.rcpt(parse_mailbox(t)),
    lambda t: commands.mail(Mailbox("a@example.com"), [t]),
    lambda t: commands.rcpt(Mailbox("a@example.com"), ["NOTIFY=NEVER", t]),
    lambda t: commands.mail(Mailbox("a@example.com"), ["ENVID=" + commands.xtext(t)]),
    lambda t: commands.auth(t, None),
    lambda t: commands.auth(t, t.encode()),
    lambda t: commands.auth("PLAIN", t.encode()),
    lambda t: commands.auth_response(t.encode()),
]


def assert_one_line(line: bytes) -> None:
    assert line.endswith(b"\r\n")
    assert line.count(b"\r") == 1
    assert line.count(b"\n") == 1
    body = line[:-2]
    assert not any(b < 0x20 or b == 0x7F for b in body), line


@FAST
@given(text=arguments, which=st.integers(min_value=0, max_value=len(ENCODERS) - 1))
def test_any_command_is_rejected_or_exactly_one_line(text: str, which: int) -> None:
    try:
        line = ENCODERS[which](text)
    except SmtpUsageError:
        return
    assert_one_line(line)


@FAST
@given(text=arguments)
def test_xtext_is_always_a_valid_parameter_value(text: str) -> None:
    encoded = commands.xtext(text)
    assert all(0x21 <= ord(c) <= 0x7E and c != "=" for c in encoded)
    assert len(encoded) >= len(text.encode())
    if encoded:  # an empty esmtp-value is malformed, and rightly refused
        assert_one_line(commands.mail(Mailbox("a@example.com"), ["ENVID=" + encoded]))


# -- (d) the EHLO parser ---------------------------------------------------------------------

_keywords = st.sampled_from(
    ["SIZE", "AUTH", "AUTH=LOGIN", "auth=", "PIPELINING", "STARTTLS", "8BITMIME", "SMTPUTF8",
     "CHUNKING", "DSN", "ENHANCEDSTATUSCODES", "X-THING", "-BAD", ""]
)
# Every character str.isdigit() accepts: decimal digits of any script, and superscripts or
# circled digits, on which str.isdigit() and int() disagree.
_DIGIT_LIKE = [chr(c) for c in range(0x110000) if chr(c).isdigit()]
_parameters = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from(_DIGIT_LIKE), min_size=1, max_size=4),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
ehlo_lines = st.lists(
    st.one_of(
        st.text(max_size=30),
        st.builds(lambda k, s, p: k + s + p, _keywords, st.sampled_from([" ", "  ", "\t", ""]),
                  _parameters),
    ),
    max_size=10,
)


@settings(max_examples=500, deadline=None)
@given(greeting=st.text(max_size=20), lines=ehlo_lines)
def test_ehlo_parser_never_raises(greeting: str, lines: list[str]) -> None:
    capabilities = Capabilities.from_ehlo(Reply(250, (greeting, *lines)))
    for keyword in capabilities.extensions:
        assert keyword == keyword.upper()
        assert keyword in capabilities
    size = capabilities.size
    assert size is None or (isinstance(size, int) and size >= 0)
    for name in capabilities.auth_mechanisms:
        assert name == name.upper()
        assert name
    assert len(set(capabilities.auth_mechanisms)) == len(capabilities.auth_mechanisms)
    for flag in (capabilities.pipelining, capabilities.starttls, capabilities.eightbitmime,
                 capabilities.smtputf8, capabilities.chunking, capabilities.dsn,
                 capabilities.enhanced_status_codes):
        assert isinstance(flag, bool)


@FAST
@given(data=st.binary(max_size=300))
def test_ehlo_from_any_parsed_reply_never_raises(data: bytes) -> None:
    parser = ReplyParser()
    parser.feed(b"250-mail.example.com\r\n" + data + b"\r\n250 END\r\n")
    try:
        reply = parser.next_reply()
    except SmtpProtocolError:
        return
    assert reply is not None
    capabilities = Capabilities.from_ehlo(reply)
    _ = capabilities.size, capabilities.auth_mechanisms
