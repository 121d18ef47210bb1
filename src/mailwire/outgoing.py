"""``Outgoing``: a message together with its envelope and the options of its transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailwire.dsn import DeliveryNotificationOptions, Recipient
from mailwire.errors import SmtpUsageError
from mailwire.message import MessageInput

Recipients = str | Recipient | Iterable[str | Recipient]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message with its envelope and transaction options, for ``send_many`` inputs that need
    them (``send`` takes the same as keywords).

    - ``sender`` and ``recipients`` default to what the message's headers say; a recipient may
      be a ``Recipient`` with its own delivery notifications and original address.
    - ``notify``, ``ret`` (``"full"`` or ``"headers"``) and ``envid``: delivery status
      notifications (RFC 3461); ``notify`` and ``ret`` default to the client's
      ``delivery_notification_options`` and ``dsn_return``.
    - ``require_tls``: REQUIRETLS (RFC 8689): the message must travel over TLS all the way; it is
      refused before sending when this connection is not TLS or the server does not offer it.
    - ``mail_options`` and ``rcpt_options``: further MAIL and RCPT parameters (``"MT-PRIORITY=3"``),
      checked like every command argument; a parameter mailwire sets itself is refused.
    """

    message: MessageInput
    sender: str | None = None
    recipients: Recipients | None = None
    notify: DeliveryNotificationOptions | str | None = None
    ret: str | None = None
    envid: str | None = None
    require_tls: bool = False
    mail_options: tuple[str, ...] = ()
    rcpt_options: tuple[str, ...] = ()

    def addresses(self) -> str | list[str] | None:
        """The recipients as plain addresses (for reading the message)."""
        recipients = self.recipients
        if recipients is None or isinstance(recipients, str):
            return recipients
        if isinstance(recipients, Recipient):
            return [recipients.address]
        return [item.address if isinstance(item, Recipient) else item for item in recipients]

    def recipient(self, address: str) -> Recipient | None:
        """The ``Recipient`` given for ``address``, if one was."""
        recipients = self.recipients
        if recipients is None or isinstance(recipients, str):
            return None
        items = [recipients] if isinstance(recipients, Recipient) else recipients
        for item in items:
            if isinstance(item, Recipient) and item.address.strip("<> ") == address:
                return item
        return None


def for_send(message: MessageInput | Outgoing, sender: str | None, recipients: Recipients | None,
             notify: DeliveryNotificationOptions | str | None, ret: str | None,
             envid: str | None, require_tls: bool, mail_options: Iterable[str],
             rcpt_options: Iterable[str]) -> Outgoing:
    """What ``send`` sends: ``message`` with the envelope keywords, or an ``Outgoing`` given as
    it is (``send_many``'s input works for ``send`` too)."""
    mail_options, rcpt_options = tuple(mail_options), tuple(rcpt_options)
    if not isinstance(message, Outgoing):
        return Outgoing(message, sender, recipients, notify, ret, envid, require_tls,
                        mail_options, rcpt_options)
    keywords = {"sender": sender, "recipients": recipients, "notify": notify, "ret": ret,
                "envid": envid, "require_tls": require_tls or None,
                "mail_options": mail_options or None, "rcpt_options": rcpt_options or None}
    given = [name for name, value in keywords.items() if value is not None]
    if given:
        raise SmtpUsageError(f"send() was given an Outgoing and {', '.join(given)}: put "
                             "everything about the transaction in the Outgoing")
    return message
