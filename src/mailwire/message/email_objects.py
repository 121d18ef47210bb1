"""Message objects (``email.message.Message``) written out as the bytes that are sent.

Before writing: every header of every part is checked (``header_checks``). The fields the
message lacks (From from the default sender, Date, Message-ID) are written as lines of their own
for the end of its header section; the caller's object is never changed. The bytes are written
in pieces that are handed out and let go of one by one. Afterwards the fields written are
compared with the fields the object has: a field that appears on the wire and not in the object
(whatever the email package did to produce it) stops the message. The envelope and Bcc removal
then work on the written bytes, as for raw input.
"""

from __future__ import annotations

import email.generator
import email.policy
import secrets
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.errors import MessageError as EmailPackageError
from email.message import Message
from email.utils import formatdate

from mailwire.errors import MessageError
from mailwire.message.address_list import addresses
from mailwire.message.envelope import ENVELOPE_FIELDS, single_address
from mailwire.message.header_checks import check_header, check_header_values
from mailwire.message.sources import CHUNK_SIZE

# The generator adds this one to a copy of a part when it has to change how the part is encoded.
_MAY_BE_ADDED = "content-transfer-encoding"
_FALLBACK_DOMAIN = "localhost"


@dataclass(slots=True)
class WrittenMessage:
    """The written message; ``added_fields`` are the lines of the fields it lacked, to be
    added at the end of its header section."""

    chunks: Iterator[bytes]
    size: int
    ascii: bool
    field_names: list[str]
    added_fields: bytes


def write_message(
    message: Message,
    sender: str | None,
    recipients: str | Iterable[str] | None,
    *,
    default_sender: str | None,
    utf8_headers: bool,
) -> WrittenMessage:
    """``message`` as bytes, in pieces, and the lines of the fields it lacks."""
    check_header_values(message)
    default_from = default_sender if "From" not in message else None
    if default_from is not None:
        single_address(default_from, "the default sender")
        check_header("From", default_from)
    utf8 = utf8_headers or _has_utf8_address(message, default_from, sender, recipients)
    policy = (message.policy if isinstance(message.policy, email.policy.EmailPolicy)
              else email.policy.SMTP)
    policy = policy.clone(linesep="\r\n", utf8=utf8)
    sink = _PieceSink()
    try:
        email.generator.BytesGenerator(sink, policy=policy).flatten(message)
        added = policy.fold_binary("From", default_from) if default_from is not None else b""
    except (UnicodeError, ValueError, LookupError, EmailPackageError) as exc:
        raise MessageError(f"message cannot be serialized: {exc}") from None
    except RecursionError:
        raise MessageError("message cannot be serialized: the email package recursed too "
                           "deeply (deeply nested parts or header syntax); send its bytes "
                           "instead") from None
    sink.flush()
    added += _date_and_message_id(message, default_from, sender)
    names = [name.lower() for name, _value in message.raw_items()]
    return WrittenMessage(sink.drain(), sink.size, sink.ascii, names, added)


def check_written_fields(written: list[str], expected: list[str]) -> None:
    """Refuse the message if writing it produced a header field its object does not have."""
    extra = Counter(written) - Counter(expected)
    extra.pop(_MAY_BE_ADDED, None)
    if extra:
        names = ", ".join(sorted(extra))
        raise MessageError(f"writing the message produced header fields it does not have "
                           f"({names}): a header value holds a line break; refusing to send it")


def _date_and_message_id(message: Message, default_from: str | None,
                         sender: str | None) -> bytes:
    """The Date and Message-ID lines ``message`` lacks (plain ASCII, shorter than a line).

    None for a message with a DKIM signature: it may cover their absence."""
    if "DKIM-Signature" in message:
        return b""
    lines = []
    if "Date" not in message:
        lines.append(f"Date: {formatdate(localtime=True)}\r\n")
    if "Message-ID" not in message:
        from_values = [str(value) for value in message.get_all("From") or []]
        from_values += [default_from] if default_from is not None else []
        lines.append(f"Message-ID: {make_message_id(from_values, sender)}\r\n")
    return "".join(lines).encode("ascii")


def make_message_id(from_values: list[str], sender: str | None) -> str:
    """A unique Message-ID at the author's domain (never the local host name: it says nothing
    about the message and tells the world the machine's name)."""
    return f"<{secrets.token_hex(16)}@{_id_domain(from_values, sender)}>"


def _id_domain(from_values: list[str], sender: str | None) -> str:
    candidates: list[str] = []
    for value in from_values:
        try:
            candidates += addresses(value, "the From header field")
        except MessageError:
            continue
    candidates.append(sender or "")
    for address in candidates:
        _local, at, domain = address.strip("<> ").rpartition("@")
        if not at:
            continue
        if domain and not domain.isascii():
            try:
                domain = domain.encode("idna").decode("ascii")
            except UnicodeError:
                continue
        if domain:
            return domain
    return _FALLBACK_DOMAIN


def _has_utf8_address(message: Message, default_from: str | None, sender: str | None,
                      recipients: str | Iterable[str] | None) -> bool:
    """Whether any address of the envelope or the address fields is not ASCII: the headers
    must then be written as UTF-8 (RFC 6532), since such an address cannot be encoded."""
    given = [sender or ""]
    if isinstance(recipients, str):
        given.append(recipients)
    elif recipients is not None:
        given += recipients
    if not all(address.isascii() for address in given):
        return True
    # Raw values, not get_all(): that would run the email package's own address parser,
    # which is neither linear nor free of recursion on what a hostile message may hold.
    values = [default_from] if default_from is not None else []
    values += [str(value) for name, value in message.raw_items()
               if name.lower() in ENVELOPE_FIELDS]
    for text in values:
        if text.isascii():
            continue
        try:
            if not all(address.isascii() for address in addresses(text, "an address field")):
                return True
        except MessageError:
            continue  # read again from the written bytes, where it is reported
    return False


class _PieceSink:
    """Where the email generator writes: pieces of ``CHUNK_SIZE`` bytes, handed out (and let go
    of) one by one as they are sent, so no second copy of the message is ever made."""

    def __init__(self) -> None:
        self.pieces: deque[bytes] = deque()
        self.size = 0
        self.ascii = True
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        if len(self._buffer) >= CHUNK_SIZE:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            piece = bytes(self._buffer)
            self._buffer.clear()
            self.size += len(piece)
            self.ascii = self.ascii and piece.isascii()
            self.pieces.append(piece)

    def drain(self) -> Iterator[bytes]:
        pieces = self.pieces
        while pieces:
            yield pieces.popleft()
