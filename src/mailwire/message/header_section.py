"""The header section of a raw message, read with the framer's definition of a line break.

The framer turns every CR, LF and CRLF into CRLF, so that is where the server and every recipient
see line breaks. The header section is normalized the same way (``normalize_line_ends``) before
anything looks at it: where it ends, which lines are fields, which lines continue a field, and
which fields are removed (Bcc). Nothing here uses another notion of a line (``str.splitlines``,
a regular expression's ``^``), so no line break can hide a field from the stripping and still
show it on the wire.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from mailwire.errors import MessageError
from mailwire.protocol.framing import normalize_line_ends

MAX_HEADER_SECTION = 1024 * 1024
CRLF = b"\r\n"
_BLANK_LINE = b"\r\n\r\n"
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
# Around a name, what a lenient reader might skip: a field is named by what is left.
_AROUND_NAME = bytes(range(0x21))


class Field(NamedTuple):
    """One header field as sent: its lines with their CRLFs (the last line of a section that
    has no blank line may lack one). ``name`` is lower-case; empty for a line that is no field."""

    name: str
    raw: bytes

    def value(self) -> str:
        """The unfolded value (RFC 5322 2.2.3), UTF-8 with undecodable bytes kept as escapes."""
        value = self.raw.partition(b":")[2].replace(CRLF, b"")
        return value.decode("utf-8", "surrogateescape").strip(" \t")


@dataclass(frozen=True, slots=True)
class HeaderSection:
    """The fields of a normalized header section and whether a blank line ended it."""

    fields: tuple[Field, ...]
    blank_line: bool

    def values(self, name: str) -> list[str]:
        return [field.value() for field in self.fields if field.name == name]

    def names(self) -> list[str]:
        return [field.name for field in self.fields if field.name]

    def without(self, names: Iterable[str]) -> HeaderSection:
        dropped = frozenset(names)
        return HeaderSection(tuple(f for f in self.fields if f.name not in dropped),
                             self.blank_line)

    def with_fields(self, lines: bytes) -> HeaderSection:
        """The section with the fields in ``lines`` (CRLF-terminated) added at its end."""
        added = parse_header_section(lines + CRLF).fields if lines else ()
        return HeaderSection(self.fields + added, self.blank_line)

    def to_bytes(self) -> bytes:
        return b"".join(field.raw for field in self.fields) + (CRLF if self.blank_line else b"")


def parse_header_section(section: bytes) -> HeaderSection:
    """The fields of ``section``, a header section already normalized to CRLF line breaks.

    A field is a line and the lines after it that start with a space or a tab; its name is what
    comes before the first colon of its first line (empty when that is no field name). The
    section holds no CR or LF outside a CRLF, so ``bytes.splitlines`` (which splits at CR, LF and
    CRLF only) cuts exactly at its CRLFs."""
    blank_line = section == CRLF or section.endswith(_BLANK_LINE)
    body = section[:-2] if blank_line else section
    fields: list[Field] = []
    name: str | None = None
    start = end = 0
    for line in body.splitlines(keepends=True):
        if name is not None and line[0] in _WSP:
            end += len(line)
            continue
        if name is not None:
            fields.append(_new_field(Field, (name, body[start:end])))
        head, colon, _ = line.partition(b":")
        name = _field_name(head) if colon else ""
        start, end = end, end + len(line)
    if name is not None:
        fields.append(_new_field(Field, (name, body[start:end])))
    return HeaderSection(tuple(fields), blank_line)


_WSP = (0x20, 0x09)
_new_field = tuple.__new__


@functools.lru_cache(maxsize=1024)
def _field_name(head: bytes) -> str:
    """The lower-case name of a field whose line starts ``head:``; empty if it is no name."""
    name = head.strip(_AROUND_NAME)
    if not _FIELD_NAME.fullmatch(name):
        return ""
    return name.decode("ascii").lower()


@dataclass(slots=True)
class SplitMessage:
    """A message cut after its header section (normalized), the rest still to be read.

    ``growth`` is how many bytes normalizing what was read so far added, for size accounting.
    """

    header: bytes
    rest: Iterator[bytes]
    growth: int


def split_header_section(stream: Iterator[bytes]) -> SplitMessage:
    """Read ``stream`` up to the blank line that ends the header section, normalizing line
    breaks as it goes; a message without one is all header. Refuses a header section longer
    than ``MAX_HEADER_SECTION`` bytes."""
    normalized = bytearray()
    read = 0
    carry = b""  # a CR at the end of a chunk: half of a CRLF, or a line break of its own
    for chunk in stream:
        data = carry + chunk
        carry = b""
        if data.endswith(b"\r"):
            data, carry = data[:-1], b"\r"
        searched_from = max(0, len(normalized) - 3)
        read += len(data)
        normalized += normalize_line_ends(data)
        end = _header_end(normalized, searched_from)
        if end > MAX_HEADER_SECTION or (end < 0 and len(normalized) > MAX_HEADER_SECTION):
            raise MessageError(f"header section longer than {MAX_HEADER_SECTION} bytes")
        if end >= 0:
            rest = bytes(normalized[end:]) + carry
            return SplitMessage(bytes(normalized[:end]), _prepend(rest, stream),
                                len(normalized) - read)
    read += len(carry)
    normalized += normalize_line_ends(carry)
    if len(normalized) > MAX_HEADER_SECTION:
        raise MessageError(f"header section longer than {MAX_HEADER_SECTION} bytes")
    return SplitMessage(bytes(normalized), iter(()), len(normalized) - read)


def split_whole(data: bytes) -> SplitMessage:
    """``split_header_section`` of a message given whole as one piece of bytes that does not end
    with a CR (nothing is held back for the next piece), without copying it piece by piece."""
    normalized = normalize_line_ends(data)
    end = _header_end(normalized, 0)
    if end > MAX_HEADER_SECTION or (end < 0 and len(normalized) > MAX_HEADER_SECTION):
        raise MessageError(f"header section longer than {MAX_HEADER_SECTION} bytes")
    growth = len(normalized) - len(data)
    if end < 0:
        return SplitMessage(normalized, iter(()), growth)
    rest = normalized[end:]
    return SplitMessage(normalized[:end], iter((rest,) if rest else ()), growth)


def _header_end(normalized: bytes | bytearray, searched_from: int) -> int:
    """Where the blank line after the header section ends; -1 when not seen yet."""
    if normalized[:2] == CRLF:
        return 2
    found = normalized.find(_BLANK_LINE, searched_from)
    return found + len(_BLANK_LINE) if found >= 0 else -1


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
