"""Text from the network made safe to print on a terminal.

A server (or a client of ``mailwire serve``) chooses the text of its replies, its greeting, its
certificate's names and the addresses it reports. Printed raw, an escape sequence in them could
move the cursor, rewrite earlier lines, set the window title or hide the rest of a line, and a
bare CR could overwrite a line with another. ``printable`` shows every C0 and C1 control
character, DEL, and the Unicode marks that reorder or hide text (bidirectional overrides and
isolates, line and paragraph separators, the byte order mark) as visible escapes instead.
Everything the command line prints that came from outside goes through it.
"""

from __future__ import annotations

import logging
import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\x1b": "\\x1b"}


def printable(text: str) -> str:
    """``text`` with every character that could act on the terminal shown as an escape."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class PrintableFormatter(logging.Formatter):
    """A log formatter whose lines are ``printable``: the protocol trace shows the server's
    replies as they were, escapes included, without obeying them."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))
