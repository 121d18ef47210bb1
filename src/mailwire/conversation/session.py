"""The SMTP conversation over one connection, written once as generators of I/O requests.

``Session`` owns the protocol state of a connection (reply parser, capabilities, whether it is
still usable) and offers flows: ``open`` (connect, greeting, EHLO, TLS in the chosen mode),
``authenticate``, ``transaction``, ``noop``, ``reset`` and ``quit``. Drivers run the flows; they
never decide anything about SMTP.

Rules kept here:
- STARTTLS is sent alone; bytes received after its 220 and before TLS are an attack and fatal;
  everything learned before TLS is forgotten and EHLO is sent again.
- A mode that requires TLS never continues in plaintext; an automatic mode never falls back to
  plaintext once a TLS attempt has failed.
- Credentials go over TLS only, unless the caller explicitly allows plaintext.
- A message counts as sent only after the server's 2xx for its data. A failure after the end of
  data is ``DeliveryUnknownError``; a failure before it leaves nothing delivered.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from dataclasses import dataclass, replace
from typing import Any

from mailwire.auth import Credentials, SmtpKnownAuthenticationType, choose
from mailwire.conversation.requests import (
    Close,
    Flow,
    Open,
    Read,
    StartTls,
    TransportDetails,
    Write,
)
from mailwire.errors import (
    AuthenticationError,
    ConnectionLostError,
    DataRefusedError,
    DeliveryUnknownError,
    GreetingRefusedError,
    MessageError,
    RecipientsRefusedError,
    SenderRefusedError,
    SmtpConnectionError,
    SmtpError,
    SmtpProtocolError,
    SmtpResponseError,
    SmtpSecurityError,
    SmtpTimeoutError,
    SmtpUsageError,
    TlsNotSpokenError,
)
from mailwire.message import PreparedMessage
from mailwire.protocol import commands
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.framing import DataFramer
from mailwire.protocol.replies import Reply, ReplyParser
from mailwire.results import ConnectionInfo, SendResult
from mailwire.security import IMPLICIT_TLS_PORT, SecurityOptions
from mailwire.transport.endpoint import Endpoint

trace = logging.getLogger("mailwire.protocol")

WRITE_BUFFER = 256 * 1024
SERVICE_CLOSING = 421


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What a session needs to know, fixed when the connection is made."""

    endpoint: Endpoint
    security: SecurityOptions
    timeout: float
    greeting_timeout: float
    local_hostname: str | None
    credentials: Credentials | None = None
    allowed_authentication: SmtpKnownAuthenticationType = SmtpKnownAuthenticationType.ALL
    allow_plaintext_credentials: bool = False


class Session:
    """The state and flows of one SMTP connection."""

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.parser = ReplyParser()
        self.capabilities = Capabilities.none()
        self.alive = False
        self.data_started = False
        self.info: ConnectionInfo | None = None
        self._transport: TransportDetails | None = None
        self._tls_failed = False

    # -- opening -------------------------------------------------------------------------------

    def open(self) -> Flow[ConnectionInfo]:
        """Connect in the configured mode and greet; no authentication yet."""
        try:
            return (yield from self._open())
        except BaseException:
            if self.alive:
                self.alive = False
                yield Close()
            raise

    def _open(self) -> Flow[ConnectionInfo]:
        mode = self.settings.security
        if mode is SecurityOptions.NONE:
            greeting = yield from self._connect(tls=False)
            yield from self._hello()
            return self._finish_open(greeting, SecurityOptions.NONE)
        if mode is SecurityOptions.SSL_IMPLICIT:
            greeting = yield from self._connect(tls=True)
            yield from self._hello()
            return self._finish_open(greeting, SecurityOptions.SSL_IMPLICIT)
        if mode is SecurityOptions.SSL_EXPLICIT:
            greeting = yield from self._connect(tls=False)
            yield from self._hello()
            yield from self._start_tls()
            return self._finish_open(greeting, SecurityOptions.SSL_EXPLICIT)
        return (yield from self._open_automatically())

    def _open_automatically(self) -> Flow[ConnectionInfo]:
        """AUTO and SSL_AUTO: find the server's mode with as few round trips as possible.

        On the implicit-TLS port the TLS handshake comes first. Elsewhere the greeting is awaited
        for ``greeting_timeout``: a server that stays silent is waiting for a ClientHello, and
        the handshake starts on the same connection.
        """
        if self.settings.endpoint.port == IMPLICIT_TLS_PORT:
            try:
                greeting = yield from self._connect(tls=True)
            except TlsNotSpokenError:
                self._tls_failed = True
                self.alive = False
                yield Close()
            else:
                yield from self._hello()
                return self._finish_open(greeting, SecurityOptions.SSL_IMPLICIT)
        self._transport = yield Open(self.settings.endpoint, tls=False,
                                     timeout=self.settings.timeout)
        self.alive = True
        try:
            greeting = yield from self._read_reply("greeting", self.settings.greeting_timeout)
        except SmtpTimeoutError:
            if self.parser.buffered:
                raise
            self._transport = yield StartTls(timeout=self.settings.timeout)
            greeting = yield from self._read_greeting(self.settings.timeout)
            yield from self._hello()
            return self._finish_open(greeting, SecurityOptions.SSL_IMPLICIT)
        self._check_greeting(greeting)
        yield from self._hello()
        if self.capabilities.starttls:
            yield from self._start_tls()
            return self._finish_open(greeting, SecurityOptions.SSL_EXPLICIT)
        if self.settings.security is SecurityOptions.SSL_AUTO or self._tls_failed:
            reason = "a TLS attempt failed" if self._tls_failed else "SSL_AUTO requires TLS"
            raise SmtpSecurityError(
                f"the server offers neither implicit TLS nor STARTTLS, and {reason}"
            )
        return self._finish_open(greeting, SecurityOptions.NONE)

    def _connect(self, *, tls: bool) -> Flow[Reply]:
        self._transport = yield Open(self.settings.endpoint, tls=tls, timeout=self.settings.timeout)
        self.alive = True
        return (yield from self._read_greeting(self.settings.greeting_timeout))

    def _read_greeting(self, timeout: float) -> Flow[Reply]:
        greeting = yield from self._read_reply("greeting", timeout)
        self._check_greeting(greeting)
        return greeting

    @staticmethod
    def _check_greeting(greeting: Reply) -> None:
        if greeting.code != 220:
            raise GreetingRefusedError("the server refused the session", reply=greeting)

    def _hello(self) -> Flow[None]:
        name = self.settings.local_hostname or self._address_literal()
        reply = yield from self._command(commands.ehlo(name), "EHLO")
        if reply.code == 250:
            self.capabilities = Capabilities.from_ehlo(reply)
            return
        if 500 <= reply.code < 600:
            reply = yield from self._command(commands.helo(name), "HELO")
            if reply.code == 250:
                self.capabilities = Capabilities.none()
                return
        raise SmtpResponseError("the server refused EHLO and HELO", reply=reply)

    def _address_literal(self) -> str:
        """The local address as an EHLO address literal: always valid, needs no DNS."""
        address = str(self._transport.local_address[0]) if self._transport else "127.0.0.1"
        return f"[IPv6:{address}]" if ":" in address else f"[{address}]"

    def _start_tls(self) -> Flow[None]:
        if not self.capabilities.starttls:
            raise SmtpSecurityError("the server does not offer STARTTLS, which this mode requires")
        reply = yield from self._command(commands.STARTTLS, "STARTTLS")
        if reply.code != 220:
            raise SmtpSecurityError("the server refused STARTTLS", reply=reply)
        if self.parser.buffered:
            raise SmtpSecurityError(
                "the server sent data after its STARTTLS reply, before TLS began "
                "(plaintext injection); connection closed"
            )
        self._transport = yield StartTls(timeout=self.settings.timeout)
        self.capabilities = Capabilities.none()
        yield from self._hello()

    def _finish_open(self, greeting: Reply, security: SecurityOptions) -> ConnectionInfo:
        transport = self._transport
        tls = transport.tls if transport else None
        self.info = ConnectionInfo(
            security=security,
            greeting=greeting,
            capabilities=self.capabilities,
            tls_version=tls.version if tls else None,
            cipher=tls.cipher if tls else None,
            local_address=transport.local_address if transport else (),
            remote_address=transport.remote_address if transport else (),
            peer_certificate=tls.peer_certificate if tls else None,
        )
        return self.info

    # -- authentication ------------------------------------------------------------------------

    def authenticate(self) -> Flow[str]:
        """Authenticate with the strongest mechanism both sides allow; returns its name."""
        with self._fatal_unless_answered():
            return (yield from self._authenticate())

    def _authenticate(self) -> Flow[str]:
        credentials = self.settings.credentials
        info = self.info
        if credentials is None or info is None:
            raise SmtpUsageError("no credentials to authenticate with")
        if info.security is SecurityOptions.NONE and not self.settings.allow_plaintext_credentials:
            raise SmtpSecurityError(
                "refusing to send credentials over an unencrypted connection; use a TLS mode, or "
                "set allow_plaintext_credentials=True to send them in the clear"
            )
        offered = self.capabilities.auth_mechanisms
        mechanism = choose(offered, self.settings.allowed_authentication, credentials)(credentials)
        name = mechanism.name()
        flow = mechanism.flow()
        initial = next(flow)
        hidden = "" if initial is None else " <redacted>"
        command = commands.auth(name, initial)
        reply = yield from self._command(command, "AUTH", f"AUTH {name}{hidden}")
        while reply.code == 334:
            try:
                challenge = base64.b64decode(reply.text.strip(), validate=True)
            except binascii.Error:
                yield from self._cancel_auth()
                raise SmtpProtocolError("AUTH challenge is not base64", reply=reply) from None
            try:
                response = flow.send(challenge)
            except StopIteration:
                yield from self._cancel_auth()
                raise AuthenticationError(f"{name}: the server asked for more than the mechanism "
                                          "provides", reply=reply) from None
            except SmtpError:
                yield from self._cancel_auth()
                raise
            reply = yield from self._command(commands.auth_response(response or b""), "AUTH",
                                             "<redacted>")
        if reply.code != 235:
            raise AuthenticationError(f"{name} authentication failed", reply=reply)
        try:
            flow.send(None)
        except StopIteration:
            pass
        else:
            raise AuthenticationError(f"{name}: the server reported success too early")
        self.info = _replace_mechanism(self.info, name)
        return name

    def _cancel_auth(self) -> Flow[None]:
        yield from self._command(commands.AUTH_CANCEL, "AUTH", "*")

    # -- sending -------------------------------------------------------------------------------

    def transaction(self, message: PreparedMessage) -> Flow[SendResult]:
        """MAIL, RCPT, DATA and the message; refusals leave the connection usable."""
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
        parameters, check_eight_bit = self._mail_parameters(message)
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

    def _mail_parameters(self, message: PreparedMessage) -> tuple[list[str], bool]:
        capabilities = self.capabilities
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

    # -- small commands ------------------------------------------------------------------------

    def reset(self) -> Flow[Reply]:
        reply = yield from self._command(commands.RSET, "RSET")
        if reply.code != 250:
            self.alive = False
            yield Close()
        return reply

    def read_reset_reply(self) -> Flow[Reply]:
        """The reply to an RSET sent in a pipelined group; anything but 250 ends the session."""
        reply = yield from self._read_reply("RSET", self.settings.timeout)
        if reply.code != 250:
            self.alive = False
            raise SmtpResponseError("the server refused RSET", reply=reply)
        return reply

    def noop(self) -> Flow[Reply]:
        with self._fatal_unless_answered():
            reply = yield from self._command(commands.NOOP, "NOOP")
            if reply.code != 250:
                raise SmtpResponseError("NOOP failed", reply=reply)
            return reply

    def quit(self) -> Flow[None]:
        """Say goodbye and close; a server that is already gone is no error."""
        if not self.alive:
            return
        self.alive = False
        with contextlib.suppress(SmtpError):
            yield from self._command(commands.QUIT, "QUIT")
        yield Close()

    # -- plumbing ------------------------------------------------------------------------------

    def _command(self, line: bytes, phase: str, shown: str | None = None) -> Flow[Reply]:
        if self._tracing:
            self._trace_out(line, shown)
        yield Write(line, phase, self.settings.timeout)
        return (yield from self._read_reply(phase, self.settings.timeout))

    def _read_reply(self, phase: str, timeout: float) -> Flow[Reply]:
        parser = self.parser
        while (reply := parser.next_reply()) is None:
            data = yield Read(phase, timeout)
            if not data:
                raise ConnectionLostError(f"the server closed the connection during {phase}")
            parser.feed(data)
        if reply.code == SERVICE_CLOSING:
            self.alive = False
        if self._tracing:
            for line in reply.lines[:-1]:
                trace.debug("S: %d-%s", reply.code, line)
            trace.debug("S: %d %s", reply.code, reply.lines[-1])
        return reply

    @property
    def _tracing(self) -> bool:
        return trace.isEnabledFor(logging.DEBUG)

    @staticmethod
    def _trace_out(line: bytes, shown: str | None = None) -> None:
        if shown is None:
            shown = line.decode("utf-8", "replace").rstrip()
        trace.debug("C: %s", shown)

    def _fatal_unless_answered(self) -> _FatalUnlessAnswered:
        return _FatalUnlessAnswered(self)


class _FatalUnlessAnswered:
    """Marks the connection unusable when a flow fails other than by a server's refusal."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 _traceback: Any) -> None:
        if error is None:
            return
        answered = isinstance(error, SmtpResponseError) and error.code != SERVICE_CLOSING
        if not (answered or isinstance(error, SmtpUsageError)):
            self.session.alive = False


ACCEPTED = (250, 251)


@dataclass(slots=True)
class Envelope:
    """MAIL and RCPT commands of one message, ready to write."""

    sender: str
    mail: bytes
    rcpts: list[bytes]
    addresses: list[str]
    check_eight_bit: bool

    @property
    def pipelined(self) -> bytes:
        return b"".join((self.mail, *self.rcpts, commands.DATA))


@dataclass(slots=True)
class EnvelopeReplies:
    mail: Reply
    rcpts: list[Reply]
    data: Reply | None


@dataclass(slots=True)
class EnvelopeOutcome:
    """Who was accepted and refused; ``failure`` when the message cannot go on to its data."""

    sender: str
    accepted: list[str]
    refused: dict[str, Reply]
    failure: SmtpResponseError | None


def judge_envelope(envelope: Envelope, replies: EnvelopeReplies) -> EnvelopeOutcome:
    accepted: list[str] = []
    refused: dict[str, Reply] = {}
    for address, reply in zip(envelope.addresses, replies.rcpts, strict=False):
        if reply.code in ACCEPTED:
            accepted.append(address)
        else:
            refused[address] = reply
    failure: SmtpResponseError | None = None
    if replies.mail.code != 250:
        failure = SenderRefusedError(envelope.sender, replies.mail)
    elif not accepted:
        failure = RecipientsRefusedError(refused)
    elif replies.data is not None and replies.data.code != 354:
        failure = DataRefusedError("the server refused DATA", reply=replies.data)
    return EnvelopeOutcome(envelope.sender, accepted, refused, failure)


def _delivery_unknown(cause: Exception) -> DeliveryUnknownError:
    return DeliveryUnknownError(
        f"no verdict on the message after its end was sent ({cause}); "
        "the server may or may not have accepted it"
    )


def _replace_mechanism(info: ConnectionInfo | None, name: str) -> ConnectionInfo | None:
    return None if info is None else replace(info, auth_mechanism=name)
