"""Server replies: the ``Reply`` value and an incremental, bounded reply parser.

The parser takes bytes in any split (``feed``) and hands out complete replies (``next_reply``).
Each line is capped at ``max_line_length`` bytes and each reply at ``max_lines`` lines, so a
hostile server cannot make it hold more than about ``max_line_length * max_lines`` bytes; anything
that is not ``NNN[ -]text`` is a protocol error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailwire.errors import SmtpProtocolError

DEFAULT_MAX_LINE_LENGTH = 8192
DEFAULT_MAX_LINES = 256

_ENHANCED_CODE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)", re.ASCII)


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete reply: a three-digit code and one or more lines of text."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """All lines joined with newlines, enhanced status codes included."""
        return "\n".join(self.lines)

    @property
    def enhanced_code(self) -> str | None:
        """The RFC 3463 enhanced status code of the first line, when its class matches."""
        match = _ENHANCED_CODE.match(self.lines[0]) if self.lines else None
        if match is None or match.group(1) != str(self.code)[0]:
            return None
        return f"{match.group(1)}.{match.group(2)}.{match.group(3)}"

    @property
    def is_positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        return 400 <= self.code < 500

    def describe(self) -> str:
        return f"{self.code} {' / '.join(self.lines)}".rstrip()


class ReplyParser:
    """Turns a byte stream from the server into ``Reply`` objects."""

    __slots__ = ("_buffer", "_code", "_lines", "_pending_bytes", "max_line_length", "max_lines")

    def __init__(
        self, *, max_line_length: int = DEFAULT_MAX_LINE_LENGTH, max_lines: int = DEFAULT_MAX_LINES
    ) -> None:
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._pending_bytes = 0
        self._code = 0
        self.max_line_length = max_line_length
        self.max_lines = max_lines

    @property
    def buffered(self) -> int:
        """How many received bytes are not part of a reply handed out yet."""
        return len(self._buffer) + self._pending_bytes

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def clear(self) -> None:
        self._buffer.clear()
        self._lines.clear()
        self._pending_bytes = 0

    def next_reply(self) -> Reply | None:
        """The next complete reply, or None until more bytes are fed."""
        buffer = self._buffer
        start = 0
        try:
            while True:
                end = buffer.find(b"\n", start)
                if end < 0:
                    if len(buffer) - start > self.max_line_length:
                        raise SmtpProtocolError(
                            f"reply line longer than {self.max_line_length} bytes"
                        )
                    return None
                if end - start > self.max_line_length:
                    raise SmtpProtocolError(f"reply line longer than {self.max_line_length} bytes")
                line = bytes(buffer[start:end])
                start = end + 1
                self._pending_bytes += len(line) + 1
                reply = self._take_line(line[:-1] if line.endswith(b"\r") else line)
                if reply is not None:
                    return reply
        finally:
            del buffer[:start]

    def _take_line(self, line: bytes) -> Reply | None:
        if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in b" -"):
            raise SmtpProtocolError(f"malformed reply line {line[:80]!r}")
        code = int(line[:3])
        if not 200 <= code <= 599:
            raise SmtpProtocolError(f"reply code {code} out of range")
        if self._lines and code != self._code:
            raise SmtpProtocolError(f"multi-line reply changed code from {self._code} to {code}")
        self._code = code
        self._lines.append(line[4:].decode("utf-8", "replace"))
        if len(line) > 3 and line[3] == 0x2D:  # "-": more lines follow
            if len(self._lines) >= self.max_lines:
                raise SmtpProtocolError(f"multi-line reply longer than {self.max_lines} lines")
            return None
        lines = tuple(self._lines)
        self._lines.clear()
        self._pending_bytes = 0
        return Reply(code, lines)
