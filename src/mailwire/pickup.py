"""Delivery to a pickup directory instead of the network, as Aspose.Email and .NET do it.

With ``client.delivery_method = SmtpDeliveryMethod.SPECIFIED_PICKUP_DIRECTORY`` and
``client.pickup_directory_location`` set, each message is written as one ``.eml`` file, which a
mail service (IIS SMTP, Exchange, a local relay) picks up and sends. The file starts with
``X-Sender:`` and one ``X-Receiver:`` per recipient (the pickup format's envelope, which carries
Bcc recipients now removed from the headers), then the message with CRLF line ends, exactly as
it would have gone over the network (no dot-stuffing).

A file appears whole or not at all: it is written under a temporary name in the same directory
(created exclusively, never through an existing link), flushed to disk, then renamed to
``<random>.eml``; a pickup service never sees half a message. The directory itself is used as it
is: point it at a folder only you and the pickup service can write.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from pathlib import Path

from mailwire.errors import MessageError, SmtpError, SmtpUsageError
from mailwire.message import MessageInput, PreparedMessage
from mailwire.outgoing import Outgoing
from mailwire.protocol.framing import DataFramer
from mailwire.protocol.replies import Reply
from mailwire.results import BulkResult, SendResult

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(
    os, "O_BINARY", 0)


class SmtpDeliveryMethod(Enum):
    """How messages are delivered: over the network (default) or into a pickup directory."""

    NETWORK = "network"
    SPECIFIED_PICKUP_DIRECTORY = "specified_pickup_directory"

    @classmethod
    def parse(cls, value: SmtpDeliveryMethod | str) -> SmtpDeliveryMethod:
        if isinstance(value, SmtpDeliveryMethod):
            return value
        key = str(value).strip().lower().replace("-", "_")
        try:
            return cls(key)
        except ValueError:
            raise SmtpUsageError(f"unknown delivery method {value!r} (expected network or "
                                 "specified_pickup_directory)") from None


def write_to_pickup(message: PreparedMessage, directory: str | os.PathLike[str] | None
                    ) -> SendResult:
    """Write ``message`` into ``directory`` as one ``.eml`` file; its result names the file."""
    if directory is None:
        raise SmtpUsageError("delivery_method is SPECIFIED_PICKUP_DIRECTORY and "
                             "pickup_directory_location is not set")
    folder = Path(directory)
    if not folder.is_dir():
        raise SmtpUsageError(f"the pickup directory {str(folder)!r} does not exist")
    name = secrets.token_hex(16)
    temporary = folder / f".{name}.tmp"
    final = folder / f"{name}.eml"
    try:
        descriptor = os.open(temporary, _FLAGS, 0o666)
    except OSError as error:
        raise SmtpUsageError(f"cannot write into the pickup directory {str(folder)!r}: "
                             f"{error.strerror or error}") from None
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(_envelope_fields(message))
            framer = DataFramer(dot_stuff=False)
            try:
                for chunk in message.chunks:
                    out.write(framer.frame(chunk))
            except OSError:
                raise
            except Exception as error:
                raise MessageError(f"reading the message failed: {error}") from error
            out.write(framer.finish())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    recipients = tuple(recipient.text for recipient in message.recipients)
    return SendResult(message.sender.text, recipients, {},
                      Reply(250, (f"written to the pickup directory as {final.name}",)))


def _envelope_fields(message: PreparedMessage) -> bytes:
    lines = [f"X-Sender: {message.sender.text}"]
    lines += [f"X-Receiver: {recipient.text}" for recipient in message.recipients]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def write_all(messages: Iterable[MessageInput | Outgoing],
              prepare: Callable[[Outgoing], PreparedMessage],
              directory: str | os.PathLike[str] | None) -> Iterator[BulkResult]:
    """``send_many`` into a pickup directory: one file per message, results in input order."""
    for index, item in enumerate(messages):
        outgoing = item if isinstance(item, Outgoing) else Outgoing(item)
        try:
            result = write_to_pickup(prepare(outgoing), directory)
        except SmtpError as error:
            yield BulkResult(index, None, error, 1)
        else:
            yield BulkResult(index, result, None, 1)
