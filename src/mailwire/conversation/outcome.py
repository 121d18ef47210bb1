"""One try of one message on one connection, and the one place where its outcome is decided.

An ``Attempt`` records what was written for the message and what the server answered. ``decide``
turns that record into the message's outcome:

- sent: the server's own 2xx for its end of data (``.`` or ``BDAT LAST``), after an accepted
  sender and at least one accepted recipient;
- refused: a 4xx/5xx to MAIL, to every RCPT, to DATA, to a chunk or to the end of data;
- not sent: nothing of its end of data was written (the connection failed before, or the
  transfer was abandoned); the server cannot have delivered it;
- unknown (``DeliveryUnknownError``): its end of data was written and no verdict came.

Nothing else in mailwire decides whether a message was sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from mailwire.conversation.envelope import ACCEPTED, Envelope
from mailwire.errors import (
    ConnectionLostError,
    DataRefusedError,
    DeliveryUnknownError,
    RecipientsRefusedError,
    SenderRefusedError,
    SmtpError,
    SmtpProtocolError,
)
from mailwire.message import PreparedMessage
from mailwire.protocol.replies import Reply
from mailwire.results import SendResult

if TYPE_CHECKING:
    from mailwire.conversation.tickets import Ticket


class Owed(Enum):
    """What a reply the server still owes answers."""

    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    CHUNK = "message data"
    END = "end of data"
    RSET = "RSET"


@dataclass(eq=False, slots=True)
class Attempt:
    """What was written for one message on one connection, and what came back."""

    ticket: Ticket
    prepared: PreparedMessage
    envelope: Envelope
    chunked: bool
    framed: bytes | None = None
    """The whole wire form of a small message, framed at once; None for one that streams."""
    mail: Reply | None = None
    rcpts: list[Reply] = field(default_factory=list)
    data: Reply | None = None
    chunk_refusal: Reply | None = None
    final: Reply | None = None
    owed: int = 0
    rcpts_accepted: int = 0
    envelope_refusal: SmtpError | None = None
    """Why the message cannot go on to its data, from the replies in so far: a refused sender,
    every recipient refused, or DATA refused (the first of these that came)."""
    content_started: bool = False
    end_written: bool = False
    reset_sent: bool = False
    abandoned: SmtpError | None = None
    """Why the transfer was given up before its end (a failing message stream, cancellation)."""

    def take(self, kind: Owed, reply: Reply) -> None:
        """Record the reply to one of this message's commands."""
        self.owed -= 1
        if kind is Owed.MAIL:
            self.mail = reply
            if reply.code != 250 and self.envelope_refusal is None:
                self.envelope_refusal = SenderRefusedError(self.envelope.sender, reply)
        elif kind is Owed.RCPT:
            rcpts = self.rcpts
            rcpts.append(reply)
            if reply.code in ACCEPTED:
                self.rcpts_accepted += 1
            elif (len(rcpts) == len(self.envelope.rcpts) and not self.rcpts_accepted
                    and self.envelope_refusal is None):
                self.envelope_refusal = RecipientsRefusedError(self._refused())
        elif kind is Owed.DATA:
            self.data = reply
            if reply.code != 354 and self.envelope_refusal is None:
                self.envelope_refusal = DataRefusedError("the server refused DATA", reply=reply)
        elif kind is Owed.CHUNK:
            if reply.code != 250 and self.chunk_refusal is None:
                self.chunk_refusal = reply
        elif kind is Owed.END:
            self.final = reply

    # -- questions the conversation asks while the message is under way -------------------------

    @property
    def accepted(self) -> list[str]:
        return [address for address, reply in zip(self.envelope.addresses, self.rcpts,
                                                 strict=False) if reply.code in ACCEPTED]

    def contradiction(self) -> SmtpProtocolError | None:
        """An error when the server accepted the message (a 2xx to its end of data) although
        its transaction had failed: what it says can no longer be trusted."""
        final = self.final
        if (final is not None and 200 <= final.code < 300
                and (self.envelope_refusal is not None or self.chunk_refusal is not None)):
            return SmtpProtocolError("the server accepted a message whose transaction had "
                                     "failed", reply=final)
        return None

    @property
    def may_send_content(self) -> bool:
        """Every envelope reply is in, and they let the data go (354 for DATA)."""
        if self.envelope_refusal is not None or self.mail is None:
            return False
        if len(self.rcpts) < len(self.envelope.rcpts):
            return False
        return self.chunked or (self.data is not None and self.data.code == 354)

    @property
    def open_on_server(self) -> bool:
        """The server holds this message's transaction (its MAIL was accepted) and no RSET
        or final verdict has closed it."""
        return (self.mail is not None and self.mail.code == 250 and not self.reset_sent
                and (self.final is None or not 200 <= self.final.code < 300))

    def _refused(self) -> dict[str, Reply]:
        return {address: reply for address, reply in zip(self.envelope.addresses, self.rcpts,
                                                         strict=False)
                if reply.code not in ACCEPTED}


def decide(attempt: Attempt, cause: SmtpError | None = None) -> SendResult | SmtpError:
    """The outcome of ``attempt``: a ``SendResult`` for a message sent, else the error to report.

    ``cause`` is why the connection failed, when it did before every reply was in. A protocol
    error in the replies to this message's own commands is reported as such: what the server
    said about it can no longer be trusted.
    """
    refusal = attempt.envelope_refusal
    final = attempt.final
    if isinstance(cause, SmtpProtocolError) and final is None and not attempt.end_written:
        return cause
    if final is not None:
        if 200 <= final.code < 300:
            contradiction = attempt.contradiction()
            if contradiction is not None:
                return contradiction
            addresses = attempt.envelope.addresses
            if attempt.rcpts_accepted == len(addresses):  # the common case: every one taken
                return SendResult(attempt.envelope.sender, tuple(addresses), {}, final)
            return SendResult(attempt.envelope.sender, tuple(attempt.accepted),
                              attempt._refused(), final)
        return refusal or _chunk_refusal(attempt) or DataRefusedError(
            "the server refused the message", reply=final)
    if refusal is not None:
        return refusal
    if attempt.chunk_refusal is not None:
        return _chunk_refusal(attempt) or DataRefusedError("the server refused the message")
    if attempt.abandoned is not None:
        return attempt.abandoned
    if attempt.end_written:
        reason = cause if cause is not None else "no verdict came"
        unknown = DeliveryUnknownError(
            f"no verdict on the message after its end was sent ({reason}); the server may or "
            "may not have accepted it")
        unknown.__cause__ = cause
        return unknown
    if cause is None:
        return ConnectionLostError("the message was not sent")
    return cause


def _chunk_refusal(attempt: Attempt) -> DataRefusedError | None:
    if attempt.chunk_refusal is None:
        return None
    return DataRefusedError("the server refused part of the message",
                            reply=attempt.chunk_refusal)
