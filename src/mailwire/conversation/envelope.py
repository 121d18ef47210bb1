"""A message's envelope as commands, and the MAIL and RCPT parameters a server needs for it:
SMTPUTF8, BODY, SIZE (decided from the message and what the server offers), delivery status
notifications (RFC 3461), REQUIRETLS (RFC 8689) and the caller's own parameters."""

from __future__ import annotations

from dataclasses import dataclass

from mailwire.dsn import DeliveryNotificationOptions, return_value
from mailwire.errors import MessageError, SmtpSecurityError, SmtpUsageError
from mailwire.message import PreparedMessage
from mailwire.outgoing import Outgoing
from mailwire.protocol import commands
from mailwire.protocol.capabilities import Capabilities

ACCEPTED = (250, 251)


@dataclass(slots=True)
class Envelope:
    """MAIL and RCPT commands of one message, ready to write."""

    sender: str
    mail: bytes
    rcpts: list[bytes]
    addresses: list[str]
    check_eight_bit: bool


@dataclass(frozen=True, slots=True)
class DsnDefaults:
    """The client's delivery status notification settings, for messages that set none."""

    notify: DeliveryNotificationOptions = DeliveryNotificationOptions.NONE
    ret: str | None = None
    required: bool = True
    """A server without DSN refuses the message (False: the DSN parameters are left out)."""


def build_envelope(capabilities: Capabilities, message: PreparedMessage, outgoing: Outgoing,
                   defaults: DsnDefaults, *, tls: bool) -> Envelope:
    """The MAIL and RCPT commands for ``message`` (checked against the server's limits)."""
    parameters, check_eight_bit = mail_parameters(capabilities, message)
    if _plain(outgoing, defaults):
        return Envelope(
            sender=message.sender.text,
            mail=commands.mail(message.sender, parameters),
            rcpts=[commands.rcpt(recipient, ()) for recipient in message.recipients],
            addresses=[recipient.text for recipient in message.recipients],
            check_eight_bit=check_eight_bit,
        )
    notify = DeliveryNotificationOptions.parse(
        outgoing.notify if outgoing.notify is not None else defaults.notify)
    ret = return_value(outgoing.ret if outgoing.ret is not None else defaults.ret)
    per_recipient = {recipient.text: outgoing.recipient(recipient.text)
                     for recipient in message.recipients}
    dsn = bool(notify or ret or outgoing.envid or any(
        item is not None and (item.notify is not None or item.orcpt)
        for item in per_recipient.values()))
    if dsn and not capabilities.dsn:
        if defaults.required:
            raise MessageError("delivery status notifications were asked for and the server "
                               "does not offer DSN (set require_dsn=False to send without them)")
        dsn = False
    if dsn and ret is not None:
        parameters.append(f"RET={ret}")
    if dsn and outgoing.envid is not None:
        parameters.append(f"ENVID={commands.xtext(outgoing.envid)}")
    if outgoing.require_tls:
        if not tls:
            raise SmtpSecurityError("the message requires TLS (REQUIRETLS) and this connection "
                                    "is not encrypted; nothing was sent")
        if "REQUIRETLS" not in capabilities:
            raise SmtpSecurityError("the message requires TLS all the way (REQUIRETLS) and the "
                                    "server does not offer REQUIRETLS; nothing was sent")
        parameters.append("REQUIRETLS")
    parameters += _own(outgoing.mail_options, parameters, "MAIL")
    rcpts = []
    for recipient in message.recipients:
        given = per_recipient[recipient.text]
        options: list[str] = []
        if dsn:
            own = (DeliveryNotificationOptions.parse(given.notify)
                   if given is not None and given.notify is not None else notify)
            value = own.notify_value()
            if value is not None:
                options.append(f"NOTIFY={value}")
            if given is not None and given.orcpt:
                options.append(f"ORCPT=rfc822;{commands.xtext(given.orcpt)}")
        options += _own(outgoing.rcpt_options, options, "RCPT")
        rcpts.append(commands.rcpt(recipient, options))
    return Envelope(
        sender=message.sender.text,
        mail=commands.mail(message.sender, parameters),
        rcpts=rcpts,
        addresses=[recipient.text for recipient in message.recipients],
        check_eight_bit=check_eight_bit,
    )


def _plain(outgoing: Outgoing, defaults: DsnDefaults) -> bool:
    """Nothing but the message's own parameters: no notifications, REQUIRETLS or the caller's
    own parameters (the common case, built without looking for them)."""
    recipients = outgoing.recipients
    return (outgoing.notify is None and outgoing.ret is None and outgoing.envid is None
            and not outgoing.require_tls and not outgoing.mail_options
            and not outgoing.rcpt_options and defaults.ret is None
            and defaults.notify is DeliveryNotificationOptions.NONE
            and (recipients is None or isinstance(recipients, str)
                 or (isinstance(recipients, list | tuple)
                     and all(isinstance(item, str) for item in recipients))))


def _own(extra: tuple[str, ...], ours: list[str], command: str) -> list[str]:
    """The caller's own parameters, none of them one that mailwire sets."""
    taken = {parameter.split("=", 1)[0].upper() for parameter in ours}
    for parameter in extra:
        keyword = str(parameter).split("=", 1)[0].strip().upper()
        if keyword in taken or keyword in _MANAGED:
            raise SmtpUsageError(f"the {command} parameter {keyword} is set by mailwire; use "
                                 "the option for it instead")
        taken.add(keyword)
    return list(extra)


_MANAGED = frozenset({"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "NOTIFY", "ORCPT",
                      "REQUIRETLS", "AUTH"})


def mail_parameters(capabilities: Capabilities,
                    message: PreparedMessage) -> tuple[list[str], bool]:
    """The MAIL parameters the message itself needs on this server (SMTPUTF8, BODY, SIZE), and
    whether 8-bit data must be checked while sending; an error when the server cannot take the
    message."""
    parameters: list[str] = []
    if message.needs_smtputf8:
        if not capabilities.smtputf8:
            raise MessageError("the message needs SMTPUTF8 (non-ASCII addresses or headers), "
                               "which the server does not offer")
        parameters.append("SMTPUTF8")
    check_eight_bit = False
    if capabilities.eightbitmime and message.eight_bit is not False:
        parameters.append("BODY=8BITMIME")
    elif message.eight_bit and capabilities.binarymime:
        parameters.append("BODY=BINARYMIME")
    elif message.eight_bit:
        raise MessageError("the message has 8-bit data and the server does not offer 8BITMIME")
    elif message.eight_bit is None:
        check_eight_bit = True
    limit = capabilities.size
    if message.size is not None and limit is not None:
        if limit and message.size > limit:
            raise MessageError(f"the message ({message.size} bytes) is larger than the "
                               f"server's limit of {limit} bytes")
        parameters.append(f"SIZE={message.size}")
    return parameters, check_eight_bit
