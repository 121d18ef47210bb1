"""A message's envelope as commands, and the MAIL parameters a server needs for it."""

from __future__ import annotations

from dataclasses import dataclass

from mailwire.errors import MessageError
from mailwire.message import PreparedMessage
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


def mail_parameters(capabilities: Capabilities,
                    message: PreparedMessage) -> tuple[list[str], bool]:
    """MAIL parameters for ``message`` on this server, and whether 8-bit data must be
    checked while sending; an error when the server cannot take the message."""
    parameters: list[str] = []
    if message.needs_smtputf8:
        if not capabilities.smtputf8:
            raise MessageError("the message needs SMTPUTF8 (non-ASCII addresses or headers), "
                               "which the server does not offer")
        parameters.append("SMTPUTF8")
    check_eight_bit = False
    if capabilities.eightbitmime and message.eight_bit is not False:
        parameters.append("BODY=8BITMIME")
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
