"""The envelope of a message: as the caller gives it, else from its header fields.

The sender is the first address of Sender, else From, else the default sender; the recipients
are those of To, Cc and Bcc. A message with a Resent-Date field was resent: its newest resent
block (Resent-Sender/-From, Resent-To/-Cc/-Bcc) gives the envelope instead (RFC 5322 3.6.6).
Every address goes through the strict address-list reader and then the strict mailbox parser,
so the envelope is what the headers say to a strict reader, or the message is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mailwire.errors import MessageError
from mailwire.message.address_list import addresses
from mailwire.protocol.addresses import Mailbox, parse_mailbox

ENVELOPE_FIELDS = frozenset({"from", "sender", "to", "cc", "bcc", "resent-date", "resent-from",
                             "resent-sender", "resent-to", "resent-cc", "resent-bcc"})
BCC_FIELDS = frozenset({"bcc", "resent-bcc"})

FieldValues = Callable[[str], list[str]]


def envelope(
    values: FieldValues,
    sender: str | None,
    recipients: str | Iterable[str] | None,
    default_sender: str | None = None,
) -> tuple[Mailbox, list[Mailbox]]:
    """The validated envelope; ``values(name)`` gives the values of a lower-case field name."""
    resent = bool(values("resent-date"))
    prefix = "resent-" if resent else ""

    def addresses_of(name: str) -> list[str]:
        field_values = values(prefix + name)
        if resent:
            field_values = field_values[:1]
        if not field_values:
            return []
        what = f"the {(prefix + name).title()} header field"
        return [found for value in field_values for found in addresses(value, what)]

    if sender is None:
        found = addresses_of("sender") or addresses_of("from")
        if found:
            sender = found[0]
        elif default_sender is not None:
            sender = single_address(default_sender, "the default sender")
        else:
            raise MessageError("no sender given and the message has no Sender or From header")
    if recipients is None:
        recipients = [*addresses_of("to"), *addresses_of("cc"), *addresses_of("bcc")]
    elif isinstance(recipients, str):
        recipients = [recipients]
    mailboxes = list(dict.fromkeys(parse_mailbox(r) for r in recipients))
    if not mailboxes:
        raise MessageError("no recipients given and the message has no To, Cc or Bcc header")
    return parse_mailbox(sender, allow_null=True), mailboxes


def single_address(text: str, what: str) -> str:
    """The one address in ``text`` (``addr``, ``<addr>`` or ``Name <addr>``), validated."""
    found = addresses(text, what) if text.strip() not in ("", "<>") else [""]
    if len(found) != 1:
        raise MessageError(f"{what} is not one address")
    return parse_mailbox(found[0], allow_null=True).text
