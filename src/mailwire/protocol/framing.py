"""Message data framing for DATA (and line-end normalization for BDAT), chunk by chunk.

Every bare CR and bare LF becomes CRLF before anything else happens, so no stray line break can
form an early end-of-data sequence on the server (SMTP smuggling). For DATA, a line that starts
with "." gets another "." (RFC 5321 4.5.2) and ``finish`` always ends with CRLF "." CRLF. State is
carried across chunk borders (a CR at the end of one chunk, a line start), so the message is
never held in memory as a whole.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r\n|\r|\n")


class DataFramer:
    """Turns message chunks into wire chunks; one framer per message."""

    __slots__ = ("_at_line_start", "_dot_stuff", "_pending_cr")

    def __init__(self, *, dot_stuff: bool = True) -> None:
        self._dot_stuff = dot_stuff
        self._at_line_start = True
        self._pending_cr = False

    def frame(self, chunk: bytes | bytearray | memoryview, *, normalized: bool = False) -> bytes:
        """The wire form of the next chunk of the message (may be empty). ``normalized``: the
        caller knows every line break in the chunk is a CRLF already."""
        data = bytes(chunk)
        if self._pending_cr:
            data = b"\r" + data
            self._pending_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._pending_cr = True
        if not data:
            return data
        if not normalized:
            data = normalize_line_ends(data)
        if self._dot_stuff:
            data = data.replace(b"\n.", b"\n..")
            if self._at_line_start and data[0] == 0x2E:
                data = b"." + data
        self._at_line_start = data.endswith(b"\n")
        return data

    def finish(self) -> bytes:
        """What follows the last chunk: the final line end and, for DATA, the end marker."""
        tail = b""
        if self._pending_cr:
            tail = b"\r\n"
            self._pending_cr = False
            self._at_line_start = True
        if not self._dot_stuff:
            return tail
        return tail + (b".\r\n" if self._at_line_start else b"\r\n.\r\n")


def normalize_line_ends(data: bytes) -> bytes:
    """``data`` with every CR, LF and CRLF turned into CRLF."""
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n") if b"\n" in data else data
    # Already normalized when every CR and LF belongs to a CRLF: nothing is left of either once
    # the CRLFs are taken out (a bare one is never part of the CRLF pairs found left to right).
    rest = data.replace(b"\r\n", b"")
    if b"\r" not in rest and b"\n" not in rest:
        return data
    return _LINE_END.sub(b"\r\n", data)
