"""The strict address-list reader: what it reads, what it refuses, and that it is linear.

The envelope taken from headers must be what a strict reader sees (``To: victim@x <evil@y``
must not become two recipients), and reading the largest header section allowed must take
time in proportion to its size whatever it holds (SECURITY.md, "Input the user did not
choose").
"""

from __future__ import annotations

import contextlib
import time

import pytest

from mailwire.errors import MessageError
from mailwire.message import MAX_HEADER_SECTION, prepare
from mailwire.message.address_list import addresses


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a@example.com", ["a@example.com"]),
        ("<a@example.com>", ["a@example.com"]),
        ("Alice <a@example.com>", ["a@example.com"]),
        ('"Doe, Jane" <jane@example.com>', ["jane@example.com"]),
        ("John Q. Public <jqp@example.com>", ["jqp@example.com"]),
        ("a@example.com (Alice, the (nested) comment)", ["a@example.com"]),
        ("(c) a (b) @ (c) example (d) . (e) com", ["a@example.com"]),
        ("a@example.com, b@example.com,c@example.com", ["a@example.com", "b@example.com",
                                                       "c@example.com"]),
        (",, a@example.com ,,", ["a@example.com"]),
        ("friends: b@example.com, Carol <c@example.com>;", ["b@example.com", "c@example.com"]),
        ("undisclosed-recipients:;", []),
        ("list: a@example.com; , b@example.com", ["a@example.com", "b@example.com"]),
        ('"quoted local"@example.com', ['"quoted local"@example.com']),
        ("a@[192.0.2.1]", ["a@[192.0.2.1]"]),
        ("=?utf-8?q?J=C3=B6rg?= <joerg@example.com>", ["joerg@example.com"]),
        ("Zoë <zoë@bücher.de>", ["zoë@bücher.de"]),
        ("first.last@sub.example.com", ["first.last@sub.example.com"]),
        ("", []),
        ("  (just a comment) ", []),
    ],
)
def test_valid_address_lists(value: str, expected: list[str]) -> None:
    assert addresses(value, "the To header field") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("victim@example.com <evil@example.net", "display name that holds '@'"),
        ("victim@example.com <evil@example.net>", "display name that holds '@'"),
        ("a@example.com b@example.com", "after an address"),
        ("a@example.com; b@example.com", "';' outside a group"),
        ("Doe, John <j@example.com>", "no <address>"),
        ("not an address", "no <address>"),
        ('"unclosed <a@example.com>', "quoted string is not closed"),
        ("a@example.com (unclosed", "comment is not closed"),
        ("<a@example.com", "not closed"),
        ("<a@example.com> trailing", "after an address"),
        ("<@route.example:a@example.com>", "source routes"),
        ("<>", "does not hold"),
        ("a@", "domain must follow"),
        ("a@example.", "label must follow"),
        ("a..b@example.com", "not a local part"),
        ("g1: g2: a@example.com;;", "group inside a group"),
        ("a@[192.0.2.1", "domain literal is not closed"),
        ("a@example.com\x00", "unexpected character"),
        ("@example.com", "where an address should start"),
    ],
)
def test_what_a_strict_reader_would_not_read_is_refused(value: str, reason: str) -> None:
    with pytest.raises(MessageError, match="the To header field is not a valid address list") \
            as caught:
        addresses(value, "the To header field")
    assert reason in str(caught.value)


def test_envelope_and_headers_agree_or_the_message_is_refused() -> None:
    # A lax reader sends RCPT to both; a strict one sees one malformed address.
    raw = b"From: a@example.com\r\nTo: victim@example.com <evil@example.net\r\n\r\nx\r\n"
    with pytest.raises(MessageError, match=r"To header field .*must be quoted"):
        prepare(raw)


def test_the_same_header_with_an_explicit_envelope_is_sent_as_written() -> None:
    raw = b"From: a@example.com\r\nTo: victim@example.com <evil@example.net\r\n\r\nx\r\n"
    prepared = prepare(raw, sender="a@example.com", recipients=["victim@example.com"])
    assert [r.text for r in prepared.recipients] == ["victim@example.com"]


def test_message_objects_get_the_envelope_from_the_written_headers() -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "victim@example.com <evil@example.net"
    message.set_content("x")
    with pytest.raises(MessageError, match="To header field"):
        prepare(message)


def test_an_error_quotes_only_a_short_excerpt() -> None:
    value = "x" * 100_000 + " <"
    with pytest.raises(MessageError) as caught:
        addresses(value, "the Cc header field")
    assert len(str(caught.value)) < 400


# -- linear time on the largest header section allowed -----------------------------------------

FIELD_ROOM = MAX_HEADER_SECTION - 200

SHAPES = {
    "spaces then <": lambda n: "a@example.com," + " " * n + "<",
    "spaces then < , repeated": lambda n: ("a@b.c, x" + " " * 60 + "<") * (n // 70),
    "nested comments": lambda n: "(" * n,
    "nested comments, closed": lambda n: "(" * (n // 2) + ")" * (n // 2) + "a@example.com",
    "many quotes": lambda n: '"' * n,
    "quoted pairs": lambda n: '"' + "\\a" * (n // 2),
    "many commas": lambda n: "," * (n - 13) + "a@example.com",
    "many groups": lambda n: "g:;," * (n // 4),
    "open groups": lambda n: "g:" * (n // 2),
    "many angle brackets": lambda n: "<" * n,
    "many at signs": lambda n: "@" * n,
    "display-name words": lambda n: "a " * (n // 2) + "<a@example.com>",
    "dotted words": lambda n: "a." * (n // 2) + "a@example.com",
    "many addresses": lambda n: ",".join(f"u{i}@example.com" for i in range(n // 20)),
    "encoded-word lookalikes": lambda n: "=?a?q?" * (n // 6),
    "unclosed literal": lambda n: "a@[" + "1" * n,
}
# Linear runs take about a second on a busy machine; the quadratic reader took half an hour.
TIME_BOUND_SECONDS = 10.0


@pytest.mark.parametrize("shape", list(SHAPES))
def test_address_fields_of_the_largest_allowed_size_are_read_in_linear_time(shape: str) -> None:
    value = SHAPES[shape](FIELD_ROOM)[:FIELD_ROOM]
    raw = b"From: a@example.com\r\nTo: " + value.encode() + b"\r\n\r\nbody\r\n"
    assert len(raw) <= MAX_HEADER_SECTION
    started = time.perf_counter()
    with contextlib.suppress(MessageError):
        prepare(raw)
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_BOUND_SECONDS, f"{shape}: {elapsed:.1f} s"


@pytest.mark.parametrize("value", [
    "a@example.com", "Alice <a@example.com>", "a@example.com, Carol Doe <c@example.com>",
    "<a@example.com>", "zoë@bücher.de", "  a@example.com  ,b@example.com ", "x.y@a.b.c",
    "a@example.com <b@example.com>", "Alice a@example.com", "a@example.com,,b@example.com",
])
def test_the_fast_path_and_the_full_reader_agree(value: str) -> None:
    from mailwire.message.address_list import _read

    try:
        full: list[str] | None = _read(value)
    except Exception:
        full = None
    try:
        fast: list[str] | None = addresses(value, "the To header field")
    except MessageError:
        fast = None
    assert fast == full
