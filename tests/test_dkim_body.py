"""The streamed DKIM body hash equals dkimpy's hash of the whole body, however it is cut.

dkimpy canonicalizes a body held in memory (``dkim.canonicalization``); mailwire does it a chunk
at a time. Both see the body the server receives: line breaks as the framer makes them, and a
final CRLF (the DATA framer adds one; mailwire adds it for BDAT too when signing).
"""

from __future__ import annotations

import hashlib
import itertools

import pytest
from dkim.canonicalization import Relaxed, Simple
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwire.message.dkim_body import BodyHasher
from mailwire.protocol.framing import normalize_line_ends

ALGORITHMS = {"simple": Simple, "relaxed": Relaxed}
PIECES = [b"a", b"b c", b" ", b"\t", b"  \t ", b"\r", b"\n", b"\r\n", b".", b"\xe9", b"\x00"]


def expected(body: bytes, canonicalization: str) -> bytes:
    received = normalize_line_ends(body)
    if received and not received.endswith(b"\r\n"):
        received += b"\r\n"
    return hashlib.sha256(ALGORITHMS[canonicalization].canonicalize_body(received)).digest()


def streamed(chunks: list[bytes], canonicalization: str) -> bytes:
    hasher = BodyHasher(canonicalization)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.digest()


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.sampled_from(PIECES), max_size=40), cuts=st.lists(st.integers(0, 80)),
       canonicalization=st.sampled_from(list(ALGORITHMS)))
def test_any_body_cut_anywhere_hashes_as_dkimpy_hashes_it_whole(
    parts: list[bytes], cuts: list[int], canonicalization: str
) -> None:
    body = b"".join(parts)
    borders = sorted({0, len(body), *(cut for cut in cuts if cut < len(body))})
    chunks = [body[start:end] for start, end in itertools.pairwise(borders)]
    assert streamed(chunks, canonicalization) == expected(body, canonicalization)


@pytest.mark.parametrize("canonicalization", list(ALGORITHMS))
@pytest.mark.parametrize("body", [
    b"",
    b"\r\n",
    b"\r\n\r\n\r\n",
    b"  \t \r\n \r\n",
    b"text",
    b"text  \t",
    b"one \r\n\r\n  two\t\r\n \r\n\r\n",
    b"bare\nline\rends\r\n\n\r",
    b"\xff\xfe 8-bit\tbytes \r\n",
], ids=repr)
def test_edge_bodies_at_every_cut(body: bytes, canonicalization: str) -> None:
    want = expected(body, canonicalization)
    for cut in range(len(body) + 1):
        assert streamed([body[:cut], body[cut:]], canonicalization) == want, cut
    assert streamed([bytes([byte]) for byte in body], canonicalization) == want


def test_an_empty_body_is_one_crlf_in_simple_and_nothing_in_relaxed() -> None:
    assert streamed([], "simple") == hashlib.sha256(b"\r\n").digest()
    assert streamed([], "relaxed") == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(("body", "lacks"), [(b"", False), (b"x\r\n", False), (b"x\n", False),
                                             (b"x\r", False), (b"x", True), (b"x  ", True)])
def test_it_tells_whether_the_body_lacks_its_final_line_break(body: bytes, lacks: bool) -> None:
    hasher = BodyHasher("relaxed")
    hasher.update(body)
    hasher.digest()
    assert hasher.lacks_final_line_break is lacks


def test_millions_of_empty_lines_then_text_are_hashed_in_blocks() -> None:
    body = b"\r\n" * 3_000_000 + b"end\r\n"
    assert streamed([body], "relaxed") == expected(body, "relaxed")
