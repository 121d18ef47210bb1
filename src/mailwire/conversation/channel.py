"""The plumbing every flow over one connection uses, and the connection's protocol state.

``Channel`` holds the settings, the reply parser, the server's capabilities and the
``ConnectionState`` (``protocol/state.py``), which alone says whether the connection may be used.
It writes (tracing on the ``mailwire.protocol`` logger exactly what went out, after it went out,
with secrets redacted by the callers), reads replies (a 421 turns the connection to CLOSING), and
offers the small commands (RSET, NOOP, QUIT). A command that does not get its reply, for any
reason, cancellation included, leaves the connection BROKEN.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from mailwire.auth import AllowedAuthentication, Credentials, SmtpKnownAuthenticationType
from mailwire.conversation.envelope import DsnDefaults
from mailwire.conversation.requests import Close, Flow, Read, Write
from mailwire.errors import (
    ConnectionLostError,
    SmtpError,
    SmtpProtocolError,
    SmtpResponseError,
    SmtpTimeoutError,
    SmtpUsageError,
)
from mailwire.protocol import commands
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import SERVICE_CLOSING, Reply, ReplyParser
from mailwire.protocol.state import ConnectionState
from mailwire.results import ConnectionInfo
from mailwire.security import SecurityOptions
from mailwire.transport.details import TransportDetails
from mailwire.transport.endpoint import Endpoint

trace = logging.getLogger("mailwire.protocol")


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What a session needs to know, fixed when the connection is made."""

    endpoint: Endpoint
    security: SecurityOptions
    timeout: float
    greeting_timeout: float
    local_hostname: str | None
    credentials: Credentials | None = None
    allowed_authentication: AllowedAuthentication = SmtpKnownAuthenticationType.ALL
    allow_plaintext_credentials: bool = False
    dsn: DsnDefaults = field(default_factory=DsnDefaults)

    @property
    def login(self) -> Login:
        return Login(self.credentials, self.allowed_authentication,
                     self.allow_plaintext_credentials)


@dataclass(frozen=True, slots=True)
class Login:
    """What decides how a session authenticates; read afresh before each login."""

    credentials: Credentials | None
    allowed_authentication: AllowedAuthentication
    allow_plaintext_credentials: bool


class Channel:
    """One connection's protocol state and the plumbing of its flows."""

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.state = ConnectionState()
        self.parser = ReplyParser()
        self.capabilities = Capabilities.none()
        self.closing_reply: Reply | None = None
        self.info: ConnectionInfo | None = None
        self.needs_reset = False
        """The server holds a transaction that failed (MAIL was accepted): RSET before MAIL."""
        self.authenticated = False
        self.messages_started = 0
        self._transport: TransportDetails | None = None

    @property
    def usable(self) -> bool:
        return self.state.usable

    # -- small commands ------------------------------------------------------------------------

    def reset(self) -> Flow[Reply]:
        """RSET; anything but 250 ends the connection."""
        reply = yield from self._command(commands.RSET, "RSET")
        if reply.code != 250:
            self.state.fail()
            yield Close()
            raise SmtpResponseError("the server refused RSET", reply=reply)
        self.needs_reset = False
        return reply

    def noop(self) -> Flow[Reply]:
        reply = yield from self._command(commands.NOOP, "NOOP")
        if reply.code != 250:
            self.state.fail()
            yield Close()
            raise SmtpResponseError("NOOP failed", reply=reply)
        return reply

    def quit(self) -> Flow[None]:
        """Say goodbye and close; a server that is already gone is no error."""
        if self.state.usable:
            self.state.closing()
            with contextlib.suppress(SmtpError):
                yield from self._write_and_read(commands.QUIT, "QUIT", None)
        yield from self.close()

    def close(self) -> Flow[None]:
        """Close the transport (without a word); the state says CLOSED."""
        self.state.closed()
        yield Close()

    # -- plumbing ------------------------------------------------------------------------------

    def ensure_nothing_unread(self, before: str) -> None:
        """Raise when the server sent something no command asked for: reading it as the reply
        to what comes next would attribute a verdict to the wrong command."""
        if self.parser.buffered:
            self.state.fail()
            raise SmtpProtocolError(f"the server sent {self.parser.buffered} byte(s) nobody asked "
                                    f"for before {before}")

    def write(self, data: bytes, phase: str, shown: Sequence[str | bytes] = ()) -> Flow[None]:
        """Write ``data``; then trace ``shown`` (what went out, redacted where needed; a command
        line as bytes is decoded only when the trace is on)."""
        yield Write(data, phase, self.settings.timeout)
        if shown and trace.isEnabledFor(logging.DEBUG):
            for line in shown:
                trace.debug("C: %s", line if isinstance(line, str)
                            else line.decode("utf-8", "replace").rstrip())

    def _command(self, line: bytes, phase: str, shown: str | None = None) -> Flow[Reply]:
        """One command and its reply; the connection is BROKEN if the reply does not come."""
        self.ensure_nothing_unread(phase)
        self.state.begin_command()
        reply = yield from self._write_and_read(line, phase, shown)
        self.state.end_command()
        return reply

    def _write_and_read(self, line: bytes, phase: str, shown: str | None) -> Flow[Reply]:
        try:
            shown_line = line.decode("utf-8", "replace").rstrip() if shown is None else shown
            yield from self.write(line, phase, (shown_line,))
            return (yield from self._read_reply(phase, self.settings.timeout))
        except BaseException as error:
            self.state.fail(error)
            raise

    def _read_reply(self, phase: str, timeout: float) -> Flow[Reply]:
        """The next reply (see ``_read_replies``)."""
        return (yield from self._read_replies((phase,), timeout))[0]

    def _read_replies(self, phases: Sequence[str], timeout: float) -> Flow[list[Reply]]:
        """One reply per phase, in order, each within ``timeout`` however slowly it trickles in.
        After a 421 the server is closing: every reply still awaited is that 421, unread."""
        replies: list[Reply] = []
        for phase in phases:
            replies.append((yield from self.next_reply(phase, timeout)))
        return replies

    def next_reply(self, phase: str, timeout: float) -> Flow[Reply]:
        """The next reply, within ``timeout`` as a whole."""
        return (yield from self.next_replies(1, phase, timeout))[0]

    def next_replies(self, most: int, phase: str, timeout: float) -> Flow[list[Reply]]:
        """The next reply, within ``timeout`` as a whole, and up to ``most - 1`` more that
        came with it."""
        parser = self.parser
        deadline = 0.0
        while not (replies := self.buffered_replies(most)):
            if deadline:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SmtpTimeoutError(phase, timeout, self.settings.endpoint.describe())
            else:
                deadline, remaining = time.monotonic() + timeout, timeout
            try:
                data = yield Read(phase, remaining)
            except SmtpTimeoutError:
                raise SmtpTimeoutError(phase, timeout, self.settings.endpoint.describe()) from None
            if not data:
                raise ConnectionLostError(f"the server closed the connection during {phase}")
            parser.feed(data)
        return replies

    def buffered_replies(self, most: int) -> list[Reply]:
        """Up to ``most`` replies received whole, in order (none when none is whole yet; no
        waiting). After a 421 the server is closing: every reply still awaited is that 421."""
        closing = self.closing_reply
        if closing is not None:
            return [closing] * most
        replies = self.parser.next_replies(most)
        if replies and replies[-1].code == SERVICE_CLOSING:
            self.state.closing()
            self.closing_reply = replies[-1]
        if replies and trace.isEnabledFor(logging.DEBUG):
            for reply in replies:
                for line in reply.lines[:-1]:
                    trace.debug("S: %d-%s", reply.code, line)
                trace.debug("S: %d %s", reply.code, reply.lines[-1])
        if self.closing_reply is not None:
            replies += [self.closing_reply] * (most - len(replies))
        return replies

    @property
    def tracing(self) -> bool:
        return trace.isEnabledFor(logging.DEBUG)

    @contextlib.contextmanager
    def _fatal_unless_answered(self) -> Iterator[None]:
        """A multi-step exchange (AUTH): the connection is usable afterwards only if the server
        gave its final answer (a refusal included) or nothing was sent."""
        self.state.begin_command()
        try:
            yield
        except BaseException as error:
            answered = ((isinstance(error, SmtpResponseError) and error.code != SERVICE_CLOSING)
                        or isinstance(error, SmtpUsageError))
            if not answered:
                self.state.fail(error)
                raise
            self.state.end_command()
            raise
        self.state.end_command()
