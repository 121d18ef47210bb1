"""Mail transactions: MAIL, RCPT, then DATA (dot-stuffed) or BDAT (exact byte counts).

A message counts as sent only after the server's 2xx for its data. A failure after the end of
data is ``DeliveryUnknownError``; a failure before it leaves nothing delivered. Refusals reset
the transaction and leave the connection usable.
"""

from __future__ import annotations

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
        if self._tracing:
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

    def trace_envelope(self, envelope: Envelope) -> None:
        for line in (envelope.mail, *envelope.rcpts, commands.DATA):
            self._trace_out(line)

    def read_envelope_replies(self, envelope: Envelope) -> Flow[EnvelopeReplies]:
        """The replies to a pipelined MAIL, RCPT... and DATA group, in order."""
        timeout = self.settings.timeout
        mail = yield from self._read_reply("MAIL", timeout)
        rcpts = []
        for _ in envelope.rcpts:
            rcpts.append((yield from self._read_reply("RCPT", timeout)))
        data = yield from self._read_reply("DATA", timeout)
        return EnvelopeReplies(mail, rcpts, data)

    def _envelope_step_by_step(self, envelope: Envelope) -> Flow[EnvelopeReplies]:
        timeout = self.settings.timeout
        yield Write(envelope.mail, "MAIL", timeout)
        mail = yield from self._read_reply("MAIL", timeout)
        rcpts: list[Reply] = []
        data = None
        if mail.code == 250:
            for line in envelope.rcpts:
                yield Write(line, "RCPT", timeout)
                rcpts.append((yield from self._read_reply("RCPT", timeout)))
            if any(reply.code in ACCEPTED for reply in rcpts):
                yield Write(commands.DATA, "DATA", timeout)
                data = yield from self._read_reply("DATA", timeout)
        return EnvelopeReplies(mail, rcpts, data)

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
        """Write the framed message in large pieces; returns the last piece, with the end
        marker, unwritten, so that the caller can send it together with what comes next."""
        timeout = self.settings.timeout
        self.data_started = True
        framer = DataFramer()
        pending: list[bytes] = []
        pending_size = 0
        chunks = iter(message.chunks)
        while True:
            try:
                chunk = next(chunks, None)
            except Exception as exc:
                yield from self._abandon_data()
                raise MessageError(f"reading the message failed: {exc}") from exc
            if chunk is None:
                break
            if check_eight_bit and not chunk.isascii():
                yield from self._abandon_data()
                raise MessageError("the message has 8-bit data and the server does not offer "
                                   "8BITMIME; the transfer was abandoned, nothing was delivered")
            framed = framer.frame(chunk)
            pending.append(framed)
            pending_size += len(framed)
            if pending_size >= WRITE_BUFFER:
                yield Write(b"".join(pending), "message data", timeout)
                pending.clear()
                pending_size = 0
        pending.append(framer.finish())
        if self._tracing:
            trace.debug("C: <message data> .")
        return b"".join(pending)

    def _abandon_data(self) -> Flow[None]:
        """Drop the connection mid-data: without the end marker the server delivers nothing."""
        self.alive = False
        yield Close()



def _delivery_unknown(cause: Exception) -> DeliveryUnknownError:
    return DeliveryUnknownError(
        f"no verdict on the message after its end was sent ({cause}); "
        "the server may or may not have accepted it"
    )


