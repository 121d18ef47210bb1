"""The DKIM body hash (``bh=``), computed as the body streams past, in constant memory.

The body is first given the framer's line breaks (every CR, LF and CRLF becomes CRLF: what the
server receives), then canonicalized (RFC 6376 3.4.3 "simple", 3.4.4 "relaxed") and hashed with
SHA-256. Nothing is kept but a few counters: a run of white space is remembered as one flag and
empty lines as a count, emitted only when something other than white space follows them, since
both vanish at the end of a line or of the body.
"""

from __future__ import annotations

import hashlib
import re

from mailwire.protocol.framing import DataFramer

CRLF = b"\r\n"
_WHITE_SPACE = re.compile(rb"[ \t]+")
CANONICALIZATIONS = ("simple", "relaxed")
_BLOCK_LINES = 32 * 1024


class BodyHasher:
    """Feed the body's chunks as they are sent (``update``), then read ``digest()``."""

    __slots__ = ("_empty_lines", "_framer", "_hash", "_in_line", "_last", "_relaxed", "_space",
                 "_started")

    def __init__(self, canonicalization: str) -> None:
        if canonicalization not in CANONICALIZATIONS:
            raise ValueError(f"unknown body canonicalization {canonicalization!r}")
        self._relaxed = canonicalization == "relaxed"
        self._framer = DataFramer(dot_stuff=False)
        self._hash = hashlib.sha256()
        self._empty_lines = 0
        """Empty lines seen and not hashed yet: they are dropped if only more follow."""
        self._in_line = False
        """Something of the current line was hashed (so its CRLF will be)."""
        self._space = False
        """Relaxed: white space seen after the last text of the line, not hashed yet."""
        self._started = False
        self._last = 0x0A

    def update(self, chunk: bytes) -> None:
        self._lines(self._framer.frame(chunk))

    @property
    def lacks_final_line_break(self) -> bool:
        """After ``digest``: the body is not empty and does not end with a line break. The hash
        is that of the body with a CRLF added, which the sender then adds too (over DATA the
        framer does; BDAT sends the body as it is), so that no verifier has to guess."""
        return self._last != 0x0A

    def digest(self) -> bytes:
        """The hash of the canonicalized body; call once, after the last chunk."""
        self._lines(self._framer.finish())
        if self._in_line:  # a body without a final line break gets one (both algorithms)
            self._hash.update(CRLF)
        elif not self._started and not self._relaxed:
            self._hash.update(CRLF)  # simple: an empty body is one CRLF; relaxed: nothing
        return self._hash.digest()

    def _lines(self, data: bytes) -> None:
        """``data`` has CRLF line breaks only, a CR never split from its LF."""
        if data:
            self._last = data[-1]
        *complete, last = data.split(CRLF)
        for line in complete:
            self._text(line)
            self._line_end()
        self._text(last)

    def _text(self, text: bytes) -> None:
        """A piece of one line, without line breaks."""
        if not text:
            return
        if self._relaxed:
            text = _WHITE_SPACE.sub(b" ", text)
            if text[0] == 0x20:
                self._space, text = True, text[1:]
            trailing = text.endswith(b" ")
            if trailing:
                text = text[:-1]
            if text:
                self._emit(b" " + text if self._space else text)
            self._space = trailing or (self._space and not text)
        else:
            self._emit(text)

    def _emit(self, text: bytes) -> None:
        while not self._in_line and self._empty_lines:  # in blocks: there may be millions
            block = min(self._empty_lines, _BLOCK_LINES)
            self._hash.update(CRLF * block)
            self._empty_lines -= block
        self._hash.update(text)
        self._in_line = self._started = True

    def _line_end(self) -> None:
        if self._in_line:
            self._hash.update(CRLF)
        else:
            self._empty_lines += 1
        self._in_line = self._space = False
