"""DATA framing: line-end normalization, dot-stuffing and the end marker, chunk by chunk.

``unstuff`` is what a server does with the wire form (RFC 5321 4.5.2): cut at the first
CRLF "." CRLF and remove one leading "." from every line. It is shared with the property tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise

import pytest

from mailwire.protocol.framing import DataFramer, normalize_line_ends

END_MARKER = b"\r\n.\r\n"


def frame_all(chunks: Iterable[bytes], *, dot_stuff: bool = True) -> bytes:
    framer = DataFramer(dot_stuff=dot_stuff)
    return b"".join(framer.frame(chunk) for chunk in chunks) + framer.finish()


def frame_split(data: bytes, offsets: Sequence[int], *, dot_stuff: bool = True) -> bytes:
    """Frame ``data`` cut at the given offsets (sorted, within range)."""
    bounds = [0, *offsets, len(data)]
    return frame_all((data[a:b] for a, b in pairwise(bounds)), dot_stuff=dot_stuff)


def expected_message(data: bytes) -> bytes:
    """The message a server should store: normalized, ending with CRLF unless empty."""
    normalized = normalize_line_ends(data)
    if normalized and not normalized.endswith(b"\r\n"):
        normalized += b"\r\n"
    return normalized


def unstuff(wire: bytes) -> bytes:
    """The message a server reads from ``wire``: up to the end marker, dots removed.

    Returns the content with every line ending in CRLF; raises AssertionError when the wire
    form has no end marker or has bytes after it.
    """
    lines: list[bytes] = []
    position = 0
    while True:
        end = wire.find(b"\r\n", position)
        assert end >= 0, f"no end marker in {wire!r}"
        line = wire[position:end]
        position = end + 2
        if line == b".":
            assert position == len(wire), f"bytes after the end marker in {wire!r}"
            return b"".join(line + b"\r\n" for line in lines)
        lines.append(line[1:] if line.startswith(b".") else line)


def assert_wire_invariants(data: bytes, wire: bytes) -> None:
    """Everything that must hold for the DATA wire form of ``data``."""
    assert unstuff(wire) == expected_message(data)
    # Only CRLF line ends: no bare CR, no bare LF.
    assert wire.count(b"\r") == wire.count(b"\r\n") == wire.count(b"\n")
    # The end-of-data sequence appears exactly once: at the very end.
    if wire == b".\r\n":
        return
    assert wire.endswith(END_MARKER)
    assert wire.find(END_MARKER) == len(wire) - len(END_MARKER)
    # A message that starts with "." cannot end the data either.
    assert not wire.startswith(b".\r\n")


# -- normalization ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "normalized"),
    [
        (b"", b""),
        (b"abc", b"abc"),
        (b"a\r\nb", b"a\r\nb"),
        (b"a\nb", b"a\r\nb"),
        (b"a\rb", b"a\r\nb"),
        (b"a\n\rb", b"a\r\n\r\nb"),
        (b"a\r\r\nb", b"a\r\n\r\nb"),
        (b"a\r\n\nb", b"a\r\n\r\nb"),
        (b"\r", b"\r\n"),
        (b"\n", b"\r\n"),
        (b"\r\r", b"\r\n\r\n"),
        (b"\n\n", b"\r\n\r\n"),
        (b"\r\n\r", b"\r\n\r\n"),
        (b"\n\r\n", b"\r\n\r\n"),
    ],
)
def test_normalize_line_ends(data: bytes, normalized: bytes) -> None:
    assert normalize_line_ends(data) == normalized


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"a\nb\n", b"a\r\nb\r\n.\r\n"),
        (b"a\rb\r", b"a\r\nb\r\n.\r\n"),
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b"mixed\r\nline\nends\rhere", b"mixed\r\nline\r\nends\r\nhere\r\n.\r\n"),
    ],
)
def test_bare_cr_and_lf_become_crlf(data: bytes, wire: bytes) -> None:
    assert frame_all([data]) == wire


# -- dot-stuffing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b".", b"..\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"..", b"...\r\n.\r\n"),
        (b".hidden\r\n", b"..hidden\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\n..b\r\n", b"a\r\n...b\r\n.\r\n"),
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r.\rb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a.b\r\n", b"a.b\r\n.\r\n"),
        (b" .a\r\n", b" .a\r\n.\r\n"),
    ],
)
def test_dot_stuffing(data: bytes, wire: bytes) -> None:
    assert frame_all([data]) == wire


def test_dot_stuffing_across_chunks() -> None:
    assert frame_all([b"a\r\n", b".b\r\n"]) == b"a\r\n..b\r\n.\r\n"
    assert frame_all([b"a\r", b"\n.b\r\n"]) == b"a\r\n..b\r\n.\r\n"
    assert frame_all([b"a\r", b".b"]) == b"a\r\n..b\r\n.\r\n"
    assert frame_all([b"a\n", b".b"]) == b"a\r\n..b\r\n.\r\n"
    assert frame_all([b"", b".b"]) == b"..b\r\n.\r\n"
    assert frame_all([b"a", b".b"]) == b"a.b\r\n.\r\n"
    assert frame_all([b"a\r\n", b"", b".", b"\r\n"]) == b"a\r\n..\r\n.\r\n"


# -- end marker ------------------------------------------------------------------------------


def test_end_marker_after_final_line_end() -> None:
    assert frame_all([b"hello\r\n"]) == b"hello\r\n.\r\n"


def test_end_marker_without_final_line_end() -> None:
    assert frame_all([b"hello"]) == b"hello\r\n.\r\n"


def test_end_marker_after_bare_cr_at_the_end() -> None:
    assert frame_all([b"hello\r"]) == b"hello\r\n.\r\n"
    assert frame_all([b"hello", b"\r"]) == b"hello\r\n.\r\n"


def test_empty_message() -> None:
    assert frame_all([]) == b".\r\n"
    assert frame_all([b""]) == b".\r\n"


def test_finish_after_empty_chunks() -> None:
    framer = DataFramer()
    assert framer.frame(b"") == b""
    assert framer.frame(b"abc") == b"abc"
    assert framer.frame(b"") == b""
    assert framer.finish() == b"\r\n.\r\n"


def test_frame_accepts_bytearray_and_memoryview() -> None:
    framer = DataFramer()
    assert framer.frame(bytearray(b".a\n")) == b"..a\r\n"
    assert framer.frame(memoryview(b".b\r")) == b"..b"
    assert framer.finish() == b"\r\n.\r\n"


# -- BDAT: no dot-stuffing, no end marker ----------------------------------------------------


def test_without_dot_stuffing() -> None:
    assert frame_all([b".a\n.\n"], dot_stuff=False) == b".a\r\n.\r\n"
    assert frame_all([b"a\r"], dot_stuff=False) == b"a\r\n"
    assert frame_all([b"a"], dot_stuff=False) == b"a"
    assert frame_all([], dot_stuff=False) == b""


# -- every chunk split gives the same output -------------------------------------------------

TRICKY = [
    b"",
    b".",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\r",
    b"..\r\n.",
    b".\r\n.\r\n.",
    b"a\r\n.\r\nb",
    b"a\n.\nb",
    b"a\r.\rb",
    b"a\n.\r\nb",
    b"a\r\n.\nb",
    b"a\r.\nb",
    b"a\n.\rb",
    b"\r\r\n\n.\r.\n.",
    b"Subject: x\r\n\r\n.line\r\n..two\n\r.\r",
    b"end with dot\r\n.",
    b"end with cr\r",
]


@pytest.mark.parametrize("data", TRICKY)
def test_every_single_split_gives_the_same_output(data: bytes) -> None:
    whole = frame_all([data])
    assert_wire_invariants(data, whole)
    for offset in range(len(data) + 1):
        assert frame_split(data, [offset]) == whole, offset


@pytest.mark.parametrize("data", TRICKY)
def test_every_pair_of_splits_gives_the_same_output(data: bytes) -> None:
    whole = frame_all([data])
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1):
            assert frame_split(data, [first, second]) == whole, (first, second)


@pytest.mark.parametrize("data", TRICKY)
def test_byte_by_byte(data: bytes) -> None:
    assert frame_all(data[i : i + 1] for i in range(len(data))) == frame_all([data])


# -- un-stuffing gives back the message ------------------------------------------------------


@pytest.mark.parametrize("data", TRICKY)
def test_unstuff_gives_back_the_normalized_message(data: bytes) -> None:
    assert unstuff(frame_all([data])) == expected_message(data)


def test_unstuff_helper_itself() -> None:
    assert unstuff(b".\r\n") == b""
    assert unstuff(b"a\r\n..b\r\n.\r\n") == b"a\r\n.b\r\n"
    with pytest.raises(AssertionError):
        unstuff(b"a\r\n")
    with pytest.raises(AssertionError):
        unstuff(b"a\r\n.\r\nb\r\n.\r\n")


# -- SMTP smuggling --------------------------------------------------------------------------

SMUGGLING = [
    b"\n.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\n.\r",
    b"\r.\n",
    b"\n\n.\n\n",
    b"\r\n\r.\r\n",
    b"\r\n.\r\r\n",
    b"\r\n\x00.\r\n",
]


@pytest.mark.parametrize("sequence", SMUGGLING)
def test_smuggling_payloads_never_end_the_data_early(sequence: bytes) -> None:
    data = (
        b"From: a@example.com\r\nTo: b@example.com\r\n\r\nfirst message"
        + sequence
        + b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
        + b"From: ceo@example.com\r\n\r\nsmuggled\r\n"
    )
    for offset in range(len(data) + 1):
        wire = frame_split(data, [offset])
        assert wire.find(END_MARKER) == len(wire) - len(END_MARKER)
        assert_wire_invariants(data, wire)
    # The smuggled commands stay message text.
    assert b"MAIL FROM:<evil@example.com>" in unstuff(frame_all([data]))


@pytest.mark.parametrize("sequence", SMUGGLING)
def test_smuggling_payload_at_the_very_start(sequence: bytes) -> None:
    wire = frame_all([sequence + b"QUIT\r\n"])
    assert_wire_invariants(sequence + b"QUIT\r\n", wire)
