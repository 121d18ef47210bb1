"""Turning what the caller gives into an envelope and a stream of message chunks.

Every kind of input ends up the same way: a stream of bytes whose header section is cut off
and read with the framer's definition of a line break (``header_section``). The envelope, when
not given, comes from that header section through the strict address reader; Bcc and
Resent-Bcc fields are removed from it whether or not the envelope was given. The body is never
read before it is sent, except by a DKIM signer, which hashes it first (``signing``): the
signature covers the message as it is finally sent.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message

from mailwire.errors import MessageError
from mailwire.message.dkim_signer import DkimSigner
from mailwire.message.email_objects import check_written_fields, write_message
from mailwire.message.envelope import BCC_FIELDS, ENVELOPE_FIELDS, envelope
from mailwire.message.header_section import (
    Field,
    HeaderSection,
    parse_header_section,
    split_header_section,
    split_whole,
)
from mailwire.message.signing import Reread, sign_message
from mailwire.message.sources import CHUNK_SIZE, MessageInput, Source, open_source, reopener
from mailwire.protocol.addresses import Mailbox


@dataclass(slots=True)
class PreparedMessage:
    """An envelope and the message content, ready for a transaction."""

    sender: Mailbox
    recipients: list[Mailbox]
    chunks: Iterator[bytes]
    size: int | None
    eight_bit: bool | None
    needs_smtputf8: bool
    normalized: bool = False
    """Every line break in ``chunks`` is already a CRLF (a message given whole as bytes: it was
    normalized while its header section was read), so framing need not look again."""

    def read_whole(self) -> bytes:
        """The whole content at once (for a small message); it can be read again after."""
        content = b"".join(self.chunks)
        self.chunks = iter((content,))
        return content


def prepare(
    message: MessageInput,
    sender: str | None = None,
    recipients: str | Iterable[str] | None = None,
    *,
    utf8_headers: bool = False,
    default_sender: str | None = None,
    dkim_signer: DkimSigner | None = None,
) -> PreparedMessage:
    """Validate the envelope and set up the chunk stream of ``message``.

    ``default_sender`` is the sender when none is given and the message has no Sender or From
    field; a message object without From also gets it as its From field. ``dkim_signer`` signs
    the message as it will be sent (after every change made here); see ``signing``.
    """
    written_names: list[str] | None = None
    added = b""
    again = None
    # A small message in memory, unsigned and not ending in a CR: its header section and its
    # body come out of one normalization, so framing need not look at its line breaks again.
    whole = (dkim_signer is None and isinstance(message, bytes | bytearray)
             and len(message) <= CHUNK_SIZE and not message.endswith(b"\r"))
    if isinstance(message, Message):
        written = write_message(message, sender, recipients, default_sender=default_sender,
                                utf8_headers=utf8_headers)
        source = Source(written.chunks, written.size, not written.ascii)
        written_names, added = written.field_names, written.added_fields
        split = split_header_section(source.chunks)
    elif whole and type(message) is bytes:  # the common case: read in one piece
        source = Source(iter(()), len(message), not message.isascii())
        split = split_whole(message)
    else:
        again = reopener(message) if dkim_signer is not None else None
        source = open_source(message)
        split = split_header_section(source.chunks)
    header = split.header
    if (written_names is None and not added and sender is not None
            and recipients is not None and b"bcc" not in header.lower()):
        # Nothing to read or remove: no field named Bcc can hide in a section without "bcc".
        envelope_sender, envelope_recipients = envelope(_no_fields, sender, recipients)
    else:
        section = parse_header_section(header)
        if written_names is not None:
            check_written_fields(section.names(), written_names)
        section = section.with_fields(added)
        found = _envelope_fields(section)
        envelope_sender, envelope_recipients = envelope(_values_of(found), sender, recipients,
                                                        default_sender)
        if added or not BCC_FIELDS.isdisjoint(found):
            header = section.without(BCC_FIELDS).to_bytes()
    size = source.size
    if size is not None:
        size += split.growth + len(header) - len(split.header)
    body, eight_bit = split.rest, source.eight_bit
    if dkim_signer is not None:
        reread = _body_again(again, split.header) if again is not None else None
        signed = sign_message(dkim_signer, header, body, reread,
                              in_memory=isinstance(message, Message))
        header, body, size, eight_bit = signed.header, signed.body, signed.size, signed.eight_bit
    return PreparedMessage(
        sender=envelope_sender,
        recipients=envelope_recipients,
        chunks=itertools.chain((header,), body),
        size=size,
        eight_bit=eight_bit,
        needs_smtputf8=(envelope_sender.needs_smtputf8
                        or any(r.needs_smtputf8 for r in envelope_recipients)
                        or not header.isascii()),
        normalized=whole,
    )


def _body_again(again: Callable[[], Iterator[bytes]], header: bytes) -> Reread:
    """The body read again, after a header section that must be the one read the first time."""

    def body() -> Iterator[bytes]:
        try:
            split = split_header_section(again())
        except OSError as error:
            raise MessageError(f"reading the message again after DKIM signing failed: "
                               f"{error}") from None
        if split.header != header:
            raise MessageError("the message changed between DKIM signing and sending (a file "
                               "written meanwhile?); nothing was sent")
        return split.rest

    return body


def _no_fields(_name: str) -> list[str]:
    return []


def _envelope_fields(section: HeaderSection) -> dict[str, list[Field]]:
    """The section's envelope fields (Bcc included) by name, in one pass."""
    found: dict[str, list[Field]] = {}
    for field in section.fields:
        if field.name in ENVELOPE_FIELDS:
            found.setdefault(field.name, []).append(field)
    return found


def _values_of(found: dict[str, list[Field]]) -> Callable[[str], list[str]]:
    def values(name: str) -> list[str]:
        fields = found.get(name)
        return [field.value() for field in fields] if fields else []

    return values
