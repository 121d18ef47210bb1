"""The DKIM body hash (``bh=``), computed as the body streams past, in constant memory.

The body is first given the framer's line breaks (every CR, LF and CRLF becomes CRLF: what the
server receives), then canonicalized (RFC 6376 3.4.3 "simple", 3.4.4 "relaxed") and hashed with
SHA-256, a chunk at a time. Nothing is kept between chunks but a flag and a count: white space
at the end of a chunk (relaxed) and the line breaks after the last text, hashed only when more
text follows them, since both vanish at the end of a line or of the body.
"""

from __future__ import annotations

import hashlib

from mailwire.protocol.framing import DataFramer

CRLF = b"\r\n"
CANONICALIZATIONS = ("simple", "relaxed")
_BLOCK_LINES = 32 * 1024


class BodyHasher:
    """Feed the body's chunks as they are sent (``update``), then read ``digest()``."""

    __slots__ = ("_framer", "_hash", "_last", "_line_breaks", "_relaxed", "_space", "_started")

    def __init__(self, canonicalization: str) -> None:
        if canonicalization not in CANONICALIZATIONS:
            raise ValueError(f"unknown body canonicalization {canonicalization!r}")
        self._relaxed = canonicalization == "relaxed"
        self._framer = DataFramer(dot_stuff=False)
        self._hash = hashlib.sha256()
        self._line_breaks = 0
        """Line breaks after the last text hashed, not hashed yet: at the end of the body they
        are dropped (empty lines at the end are ignored) and one CRLF ends the body."""
        self._space = False
        """Relaxed: white space after the last text of the line, not hashed yet."""
        self._started = False
        self._last = 0x0A

    @property
    def lacks_final_line_break(self) -> bool:
        """After ``digest``: the body is not empty and does not end with a line break. The hash
        is that of the body with a CRLF added, which the sender then adds too (over DATA the
        framer does; BDAT sends the body as it is), so that no verifier has to guess."""
        return self._last != 0x0A

    def update(self, chunk: bytes) -> None:
        self._add(self._framer.frame(chunk))

    def digest(self) -> bytes:
        """The hash of the canonicalized body; call once, after the last chunk."""
        self._add(self._framer.finish())
        if self._started or not self._relaxed:
            self._hash.update(CRLF)  # an empty body: one CRLF (simple), nothing (relaxed)
        return self._hash.digest()

    def _add(self, data: bytes) -> None:
        """``data`` has CRLF line breaks only, a CR never split from its LF."""
        if not data:
            return
        self._last = data[-1]
        if self._relaxed:
            data = self._relax(data)
        text = data.rstrip(b"\r\n")
        if text:
            self._line_break_block(self._line_breaks)
            self._hash.update(text)
            self._line_breaks = 0
            self._started = True
        self._line_breaks += (len(data) - len(text)) // 2

    def _relax(self, data: bytes) -> bytes:
        """White space runs made one space, none at the end of a line (RFC 6376 3.4.4); a run
        that reaches the end of ``data`` is kept as ``_space`` until what follows shows where
        it ends."""
        data = _single_spaces(data).replace(b" \r\n", CRLF)
        if data.startswith(b" "):
            self._space = False  # the run goes on; it is this space
        elif self._space and data:
            self._space = False
            if not data.startswith(CRLF):
                data = b" " + data
        if data.endswith(b" "):
            data, self._space = data[:-1], True
        return data

    def _line_break_block(self, count: int) -> None:
        while count:  # in blocks: there may be millions of empty lines
            block = min(count, _BLOCK_LINES)
            self._hash.update(CRLF * block)
            count -= block


def _single_spaces(data: bytes) -> bytes:
    """Every run of spaces and tabs made one space (bytes.replace scans far faster than a
    regular expression; each round halves the longest run)."""
    if b"\t" in data:
        data = data.replace(b"\t", b" ")
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data
