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


SERVICE_CLOSING = 421
"""The server is closing the connection (RFC 5321, 3.8)."""

SEEN_REPLIES = 32
"""How many distinct one-line replies a parser keeps for reuse."""

_CODES = {str(code).encode(): code for code in range(200, 600)}
"""Every valid reply code, by its three digits."""


class ReplyParser:
    """Turns a byte stream from the server into ``Reply`` objects."""

    __slots__ = ("_code", "_data", "_lines", "_pending_bytes", "_position", "_seen",
                 "max_line_length", "max_lines")

    def __init__(
        self, *, max_line_length: int = DEFAULT_MAX_LINE_LENGTH, max_lines: int = DEFAULT_MAX_LINES
    ) -> None:
        self._data = b""
        self._position = 0
        self._lines: list[str] = []
        self._pending_bytes = 0
        self._code = 0
        self._seen: dict[bytes, Reply] = {}
        """Recent one-line replies by their line: a server says the same few things again and
        again, and a ``Reply`` cannot change, so one object serves them all (bounded)."""
        self.max_line_length = max_line_length
        self.max_lines = max_lines

    @property
    def buffered(self) -> int:
        """How many received bytes are not part of a reply handed out yet."""
        return len(self._data) - self._position + self._pending_bytes

    def feed(self, data: bytes) -> None:
        if self._position:
            self._data = self._data[self._position :] + data
            self._position = 0
        else:
            self._data += data

    def clear(self) -> None:
        self._data = b""
        self._position = 0
        self._lines.clear()
        self._pending_bytes = 0

    def next_replies(self, most: int) -> list[Reply]:
        """Up to ``most`` complete replies, in order (an empty list until one is complete).
        A 421 ends the list: the server is closing, and what follows it answers nothing. A
        malformed reply ends it too, and raises at the next call."""
        replies: list[Reply] = []
        data = self._data
        position = self._position
        size = len(data)
        limit = self.max_line_length
        codes = _CODES
        seen = self._seen
        wanted = 0 if self._lines else most
        while wanted:
            # The common case, one-line replies: what _take_line checks holds here.
            end = data.find(b"\n", position)
            if end < 0 and not replies and len(data) - position <= limit:
                return replies  # no line complete yet (and none too long)
            if end < 0 or end - position > limit:
                break
            stop = end - 1 if end > position and data[end - 1] == 0x0D else end
            line = data[position:stop]
            reply = seen.get(line)
            if reply is None:
                if len(line) <= 3 or line[3] != 0x20:
                    break
                code = codes.get(line[:3])
                if code is None:
                    break
                reply = Reply(code, (line[4:].decode("utf-8", "replace"),))
                if len(seen) >= SEEN_REPLIES:
                    seen.clear()
                seen[line] = reply
            replies.append(reply)
            position = end + 1
            wanted -= 1
            if reply.code == SERVICE_CLOSING:
                most = len(replies)
                break
        if position == size:
            self._data = b""
            position = 0
        self._position = position
        if replies:
            self._pending_bytes = 0
        while len(replies) < most:
            try:
                reply = self.next_reply()
            except SmtpProtocolError:
                if replies:
                    return replies  # the replies before it count; the error comes next time
                raise
            if reply is None:
                break
            replies.append(reply)
            if reply.code == SERVICE_CLOSING:
                break
        return replies

    def next_reply(self) -> Reply | None:
        """The next complete reply, or None until more bytes are fed (line by line, every
        check made; ``next_replies`` takes the common one-line replies faster)."""
        data = self._data
        position = self._position
        limit = self.max_line_length
        while True:
            end = data.find(b"\n", position)
            if end < 0 or end - position > limit:
                if end >= 0 or len(data) - position > limit:
                    raise SmtpProtocolError(f"reply line longer than {limit} bytes")
                self._position = position
                return None
            stop = end - 1 if end > position and data[end - 1] == 0x0D else end
            self._pending_bytes += end + 1 - position
            reply = self._take_line(data, position, stop)
            position = end + 1
            if reply is not None:
                if position == len(data):
                    self._data = b""
                    position = 0
                self._position = position
                return reply

    def _take_line(self, data: bytes, start: int, stop: int) -> Reply | None:
        """The line ``data[start:stop]``: a reply when it completes one."""
        head = data[start : start + 3]
        separator = data[start + 3] if stop > start + 3 else 0x20
        if stop - start < 3 or not head.isdigit() or separator not in (0x20, 0x2D):
            raise SmtpProtocolError(f"malformed reply line {data[start:min(stop, start + 80)]!r}")
        code = int(head)
        if not 200 <= code <= 599:
            raise SmtpProtocolError(f"reply code {code} out of range")
        text = data[start + 4 : stop].decode("utf-8", "replace") if stop > start + 4 else ""
        lines = self._lines
        if separator == 0x20 and not lines:
            self._pending_bytes = 0
            return Reply(code, (text,))
        if lines and code != self._code:
            raise SmtpProtocolError(f"multi-line reply changed code from {self._code} to {code}")
        self._code = code
        lines.append(text)
        if separator == 0x2D:
            if len(lines) >= self.max_lines:
                raise SmtpProtocolError(f"multi-line reply longer than {self.max_lines} lines")
            return None
        reply = Reply(code, tuple(lines))
        lines.clear()
        self._pending_bytes = 0
        return reply
