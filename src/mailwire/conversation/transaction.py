"""Mail transactions: MAIL, RCPT, then DATA (dot-stuffed) or BDAT (exact byte counts).

A message counts as sent only after the server's 2xx for its data. A failure after the end of
data is ``DeliveryUnknownError``; a failure before it leaves nothing delivered. Refusals reset
the transaction and leave the connection usable.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailwire.conversation.channel import Channel, trace
from mailwire.conversation.envelope import (
    ACCEPTED,
    Envelope,
    EnvelopeOutcome,
    EnvelopeReplies,
    judge_envelope,
    mail_parameters,
)
from mailwire.conversation.requests import Close, Flow, Write
from mailwire.errors import (
    DataRefusedError,
    DeliveryUnknownError,
    MessageError,
    SmtpConnectionError,
    SmtpProtocolError,
    SmtpTimeoutError,
)
from mailwire.message import PreparedMessage
from mailwire.protocol import commands
from mailwire.protocol.framing import DataFramer
from mailwire.protocol.replies import Reply
from mailwire.results import SendResult

WRITE_BUFFER = 256 * 1024


class TransactionFlows(Channel):
    """The flows that send messages over a ready connection."""

    def transaction(self, message: PreparedMessage) -> Flow[SendResult]:
        """MAIL, RCPT, DATA and the message; refusals leave the connection usable."""
        self.data_started = False
        with self._fatal_unless_answered():
            return (yield from self._transaction(message))

    def _transaction(self, message: PreparedMessage) -> Flow[SendResult]:
        timeout = self.settings.timeout
        envelope = self.envelope(message)
        self.ensure_nothing_unread("MAIL")
        if self.capabilities.chunking:
            return (yield from self._transaction_chunked(message, envelope))
        if self.tracing:
            self.trace_envelope(envelope)
        if self.capabilities.pipelining:
            yield Write(envelope.pipelined, "MAIL", timeout)
            replies = yield from self.read_envelope_replies(envelope)
        else:
            replies = yield from self._envelope_step_by_step(envelope)
        outcome = judge_envelope(envelope, replies)
        if outcome.failure is not None:
            if replies.data is not None and replies.data.code == 354:
                raise SmtpProtocolError("the server accepted DATA for a failed transaction",
                                        reply=replies.data)
            yield from self.reset()
            raise outcome.failure
        self.ensure_nothing_unread("the message data")
        tail = yield from self.stream_body(message, envelope.check_eight_bit)
        try:
            yield Write(tail, "end of data", timeout)
        except (SmtpConnectionError, SmtpTimeoutError) as exc:
            raise _delivery_unknown(exc) from exc
        return (yield from self.data_verdict(outcome))

    def envelope(self, message: PreparedMessage) -> Envelope:
        """The MAIL and RCPT commands for ``message`` (checked against the server's limits)."""
        parameters, check_eight_bit = mail_parameters(self.capabilities, message)
        return Envelope(
            sender=message.sender.text,
            mail=commands.mail(message.sender, parameters),
            rcpts=[commands.rcpt(recipient) for recipient in message.recipients],
            addresses=[recipient.text for recipient in message.recipients],
            check_eight_bit=check_eight_bit,
        )

    def trace_envelope(self, envelope: Envelope, *, data: bool = True) -> None:
        for line in (envelope.mail, *envelope.rcpts, *([commands.DATA] if data else [])):
            self._trace_out(line)

    def read_envelope_replies(self, envelope: Envelope, *,
                              data: bool = True) -> Flow[EnvelopeReplies]:
        """The replies to a pipelined MAIL, RCPT... (and DATA) group, in order."""
        phases = ["MAIL", *(["RCPT"] * len(envelope.rcpts)), *(["DATA"] if data else [])]
        replies = yield from self._read_replies(phases, self.settings.timeout)
        if data:
            return EnvelopeReplies(replies[0], replies[1:-1], replies[-1])
        return EnvelopeReplies(replies[0], replies[1:], None)

    def _envelope_step_by_step(self, envelope: Envelope, *,
                               data: bool = True) -> Flow[EnvelopeReplies]:
        timeout = self.settings.timeout
        yield Write(envelope.mail, "MAIL", timeout)
        mail = yield from self._read_reply("MAIL", timeout)
        rcpts: list[Reply] = []
        data_reply = None
        if mail.code == 250:
            for line in envelope.rcpts:
                self.ensure_nothing_unread("RCPT")
                yield Write(line, "RCPT", timeout)
                rcpts.append((yield from self._read_reply("RCPT", timeout)))
            if data and any(reply.code in ACCEPTED for reply in rcpts):
                self.ensure_nothing_unread("DATA")
                yield Write(commands.DATA, "DATA", timeout)
                data_reply = yield from self._read_reply("DATA", timeout)
        return EnvelopeReplies(mail, rcpts, data_reply)

    def data_verdict(self, outcome: EnvelopeOutcome) -> Flow[SendResult]:
        """Read the server's verdict after the end of data; the message's result or error."""
        try:
            reply = yield from self._read_reply("end of data", self.settings.timeout)
        except (SmtpConnectionError, SmtpTimeoutError, SmtpProtocolError) as exc:
            raise _delivery_unknown(exc) from exc
        if not 200 <= reply.code < 300:
            raise DataRefusedError("the server refused the message", reply=reply)
        return SendResult(outcome.sender, tuple(outcome.accepted), outcome.refused, reply)

    def stream_body(self, message: PreparedMessage, check_eight_bit: bool) -> Flow[bytes]:
        """Write the dot-stuffed message in large pieces; returns the last piece, with the end
        marker, unwritten, so that the caller can send it together with what comes next."""
        timeout = self.settings.timeout
        self.data_started = True
        pieces = framed_pieces(message, DataFramer(), check_eight_bit)
        try:
            piece = next(pieces)
            for following in pieces:
                yield Write(piece, "message data", timeout)
                piece = following
        except MessageError:
            yield from self._abandon_data()
            raise
        if self.tracing:
            trace.debug("C: <message data> .")
        return piece

    def _transaction_chunked(self, message: PreparedMessage,
                             envelope: Envelope) -> Flow[SendResult]:
        """MAIL and RCPT, then the message in BDAT chunks of exact size (RFC 3030)."""
        timeout = self.settings.timeout
        pipelining = self.capabilities.pipelining
        if self.tracing:
            self.trace_envelope(envelope, data=False)
        if pipelining:
            yield Write(envelope.mail + b"".join(envelope.rcpts), "MAIL", timeout)
            replies = yield from self.read_envelope_replies(envelope, data=False)
        else:
            replies = yield from self._envelope_step_by_step(envelope, data=False)
        outcome = judge_envelope(envelope, replies)
        if outcome.failure is not None:
            yield from self.reset()
            raise outcome.failure
        self.data_started = True
        pieces = framed_pieces(message, DataFramer(dot_stuff=False), envelope.check_eight_bit)
        unanswered = 0
        try:
            piece = next(pieces)
            for following in pieces:
                if self.tracing:
                    trace.debug("C: BDAT %d <message data>", len(piece))
                yield Write(commands.bdat(len(piece), last=False) + piece, "message data",
                            timeout)
                unanswered += 1
                if not pipelining:
                    unanswered -= 1
                    yield from self._chunk_accepted()
                piece = following
        except MessageError:
            yield from self._abandon_data()
            raise
        if self.tracing:
            trace.debug("C: BDAT %d LAST <message data>", len(piece))
        try:
            yield Write(commands.bdat(len(piece), last=True) + piece, "end of data", timeout)
            refusal = None
            for _ in range(unanswered):
                reply = yield from self._read_reply("message data", timeout)
                if reply.code != 250 and refusal is None:
                    refusal = reply
        except (SmtpConnectionError, SmtpTimeoutError, SmtpProtocolError) as exc:
            raise _delivery_unknown(exc) from exc
        result = yield from self.data_verdict(outcome)
        if refusal is not None:
            raise DataRefusedError("the server refused part of the message", reply=refusal)
        return result

    def _chunk_accepted(self) -> Flow[None]:
        reply = yield from self._read_reply("message data", self.settings.timeout)
        if reply.code != 250:
            yield from self.reset()
            raise DataRefusedError("the server refused part of the message", reply=reply)

    def _abandon_data(self) -> Flow[None]:
        """Drop the connection mid-data: without the end marker the server delivers nothing."""
        self.alive = False
        yield Close()


def framed_pieces(message: PreparedMessage, framer: DataFramer,
                  check_eight_bit: bool) -> Iterator[bytes]:
    """The framed message in pieces of about ``WRITE_BUFFER`` bytes; the last piece (perhaps
    empty) carries the framer's finish. Reading failures become ``MessageError``."""
    pending: list[bytes] = []
    size = 0
    try:
        for chunk in message.chunks:
            if check_eight_bit and not chunk.isascii():
                raise MessageError("the message has 8-bit data and the server does not offer "
                                   "8BITMIME; the transfer was abandoned, nothing was delivered")
            framed = framer.frame(chunk)
            pending.append(framed)
            size += len(framed)
            if size >= WRITE_BUFFER:
                yield b"".join(pending)
                pending.clear()
                size = 0
    except MessageError:
        raise
    except Exception as exc:
        raise MessageError(f"reading the message failed: {exc}") from exc
    pending.append(framer.finish())
    yield b"".join(pending)


def _delivery_unknown(cause: Exception) -> DeliveryUnknownError:
    return DeliveryUnknownError(
        f"no verdict on the message after its end was sent ({cause}); "
        "the server may or may not have accepted it"
    )


