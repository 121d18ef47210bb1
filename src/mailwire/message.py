"""Turning what the caller gives into an envelope and a stream of message chunks.

Accepted: ``email.message.Message`` objects, ``bytes``-like objects, paths to files, binary file
objects, and iterables of ``bytes`` chunks. The header section is read (bounded) to find the
envelope when none is given and to drop Bcc; the body is never read before it is sent, so a file
or stream of any size costs one buffer of memory.
"""

from __future__ import annotations

import copy
import email.generator
import email.policy
import itertools
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import IO, TypeAlias

from mailwire.errors import MessageError, SmtpUsageError
from mailwire.protocol.addresses import Mailbox, parse_mailbox

CHUNK_SIZE = 256 * 1024
MAX_HEADER_SECTION = 1024 * 1024

MessageInput: TypeAlias = "Message | bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes] | Iterable[bytes]"  # noqa: E501

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
_ENVELOPE_FIELDS = frozenset({"from", "sender", "to", "cc", "bcc", "resent-date", "resent-from",
                              "resent-sender", "resent-to", "resent-cc", "resent-bcc"})
_SIMPLE_ADDRESS = re.compile(
    r'\s*(?:[^",<>()\\;:@\[\]]*<([^<>\s",()\[\]]+)>|([^<>\s",()\[\]:;]+))\s*(?:,|\Z)'
)
_BCC_FIELD = re.compile(rb"(?im)^(?:resent-)?bcc[ \t]*:.*(?:\r?\n[ \t].*)*(?:\r?\n)?")


@dataclass(slots=True)
class PreparedMessage:
    """An envelope and the message content, ready for a transaction."""

    sender: Mailbox
    recipients: list[Mailbox]
    chunks: Iterator[bytes]
    size: int | None
    eight_bit: bool | None
    needs_smtputf8: bool


def prepare(
    message: MessageInput,
    sender: str | None = None,
    recipients: str | Iterable[str] | None = None,
    *,
    utf8_headers: bool = False,
) -> PreparedMessage:
    """Validate the envelope and set up the chunk stream of ``message``."""
    if isinstance(message, Message):
        return _prepare_email(message, sender, recipients, utf8_headers)
    if type(message) is bytes and len(message) <= CHUNK_SIZE:
        match = _HEADER_END.search(message)
        if match is not None:
            end = match.end()
            return _prepare_raw(message[:end], iter((message[end:],)), len(message), sender,
                                recipients, eight_bit=not message.isascii())
    if isinstance(message, bytes | bytearray | memoryview):
        view = memoryview(message).cast("B")
        size: int | None = len(view)
        stream: Iterator[bytes] = _slices(view)
    elif isinstance(message, str | os.PathLike):
        path = os.fspath(message)
        try:
            size = os.path.getsize(path)
            handle = open(path, "rb")  # noqa: SIM115 - _read_file closes it
        except OSError as exc:
            raise SmtpUsageError(f"cannot read message file {path!r}: {exc.strerror}") from None
        stream = _read_file(handle)
    elif hasattr(message, "read"):
        size = None
        stream = _read_file(message, close=False)  # type: ignore[arg-type]
    else:
        size = None
        stream = iter(message)
    header_bytes, rest = _split_header_section(stream)
    return _prepare_raw(header_bytes, rest, size, sender, recipients)


def _slices(view: memoryview) -> Iterator[bytes]:
    for start in range(0, len(view), CHUNK_SIZE):
        yield bytes(view[start : start + CHUNK_SIZE])


def _read_file(handle: IO[bytes], *, close: bool = True) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk
    finally:
        if close:
            handle.close()


def _prepare_email(
    message: Message,
    sender: str | None,
    recipients: str | Iterable[str] | None,
    utf8_headers: bool,
) -> PreparedMessage:
    envelope_sender, envelope_recipients = _envelope(
        lambda name: [str(value) for value in message.get_all(name) or []], sender, recipients
    )
    outgoing = copy.copy(message)
    del outgoing["Bcc"]
    del outgoing["Resent-Bcc"]
    needs_utf8 = _needs_smtputf8(envelope_sender, envelope_recipients)
    policy = (message.policy if isinstance(message.policy, email.policy.EmailPolicy)
              else email.policy.SMTP)
    policy = policy.clone(linesep="\r\n", utf8=needs_utf8 or utf8_headers)
    sink = _PieceSink()
    try:
        email.generator.BytesGenerator(sink, policy=policy).flatten(outgoing)
    except (UnicodeError, ValueError) as exc:
        raise MessageError(f"message cannot be serialized: {exc}") from None
    sink.flush()
    return PreparedMessage(
        sender=envelope_sender,
        recipients=envelope_recipients,
        chunks=sink.drain(),
        size=sink.size,
        eight_bit=not sink.ascii,
        needs_smtputf8=needs_utf8,
    )


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


def _prepare_raw(
    header_bytes: bytes,
    rest: Iterator[bytes],
    size: int | None,
    sender: str | None,
    recipients: str | Iterable[str] | None,
    *,
    eight_bit: bool | None = None,
) -> PreparedMessage:
    envelope_given = sender is not None and recipients is not None
    fields = ({} if envelope_given and b"bcc" not in header_bytes.lower()
              else _envelope_fields(header_bytes))
    envelope_sender, envelope_recipients = _envelope(fields.get, sender, recipients)
    stripped = header_bytes
    if "bcc" in fields or "resent-bcc" in fields:
        stripped = _BCC_FIELD.sub(b"", header_bytes)
        if size is not None:
            size -= len(header_bytes) - len(stripped)

    return PreparedMessage(
        sender=envelope_sender,
        recipients=envelope_recipients,
        chunks=itertools.chain((stripped,), rest),
        size=size,
        eight_bit=eight_bit,
        needs_smtputf8=_needs_smtputf8(envelope_sender, envelope_recipients)
        or not stripped.isascii(),
    )


def _envelope_fields(header_section: bytes) -> dict[str, list[str]]:
    """The values of the header fields that decide the envelope, by lower-case name."""
    text = _FOLDING.sub(" ", header_section.decode("utf-8", "surrogateescape"))
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if colon:
            key = name.strip().lower()
            if key in _ENVELOPE_FIELDS:
                fields.setdefault(key, []).append(value.strip())
    return fields


def _split_header_section(stream: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The header section (with its blank line) and an iterator over everything after it."""
    head = b""
    for chunk in stream:
        head += chunk
        match = _HEADER_END.search(head, max(0, len(head) - len(chunk) - 3))
        end = match.end() if match is not None else len(head)
        if end > MAX_HEADER_SECTION:
            raise MessageError(f"header section longer than {MAX_HEADER_SECTION} bytes")
        if match is not None:
            return head[:end], _prepend(head[end:], stream)
    return head, iter(())


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _envelope(
    get_all: Callable[[str], list[str] | None],
    sender: str | None,
    recipients: str | Iterable[str] | None,
) -> tuple[Mailbox, list[Mailbox]]:
    """The envelope: as given, else from the (Resent-) Sender/From and To/Cc/Bcc fields."""
    resent = bool(get_all("resent-date"))
    prefix = "resent-" if resent else ""

    def values_of(name: str) -> list[str]:
        values = get_all(prefix + name) or []
        return values[:1] if resent else values

    if sender is None:
        found = _addresses(values_of("sender") or values_of("from"))
        if not found:
            raise MessageError("no sender given and the message has no Sender or From header")
        sender = found[0]
    if recipients is None:
        values: list[str] = []
        for name in ("to", "cc", "bcc"):
            values += values_of(name)
        recipients = _addresses(values)
    elif isinstance(recipients, str):
        recipients = [recipients]
    mailboxes = list(dict.fromkeys(parse_mailbox(r) for r in recipients))
    if not mailboxes:
        raise MessageError("no recipients given and the message has no To, Cc or Bcc header")
    return parse_mailbox(sender, allow_null=True), mailboxes


def _addresses(values: list[str]) -> list[str]:
    """The addresses in address-list field values; plain lists are read without the email
    package's parser, anything with quotes, comments or groups goes through it."""
    found: list[str] = []
    for value in values:
        simple = _simple_addresses(value)
        if simple is None:
            simple = [address for _name, address in getaddresses([value]) if address]
            for address in simple:
                if address not in value:
                    raise SmtpUsageError(f"malformed address in the header field value {value!r}")
        found += simple
    return found


def _simple_addresses(value: str) -> list[str] | None:
    addresses: list[str] = []
    position, end = 0, len(value)
    while position < end:
        match = _SIMPLE_ADDRESS.match(value, position)
        if match is None:
            return None
        address = match.group(1) or match.group(2)
        if "@" not in address:
            return None
        addresses.append(address)
        position = match.end()
    return addresses


def _needs_smtputf8(sender: Mailbox, recipients: list[Mailbox]) -> bool:
    return sender.needs_smtputf8 or any(r.needs_smtputf8 for r in recipients)


def simple_message(
    sender: str, recipients: str | Iterable[str], subject: str, body: str, html: str | None
) -> EmailMessage:
    """A text message, with an HTML alternative when ``html`` is given."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join([recipients] if isinstance(recipients, str) else recipients)
    message["Subject"] = subject
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message
