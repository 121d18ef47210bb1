"""The state of one SMTP connection and the plumbing every flow uses.

``Channel`` holds the settings, the reply parser, the server's capabilities and whether the
connection is still usable; it writes commands, reads replies (ending the session on 421), traces
the protocol on the ``mailwire.protocol`` logger with secrets redacted by the callers, and offers
the small commands (RSET, NOOP, QUIT).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailwire.auth import AllowedAuthentication, Credentials, SmtpKnownAuthenticationType
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
from mailwire.protocol.replies import Reply, ReplyParser
from mailwire.results import ConnectionInfo
from mailwire.security import SecurityOptions
from mailwire.transport.details import TransportDetails
from mailwire.transport.endpoint import Endpoint

trace = logging.getLogger("mailwire.protocol")

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
    allowed_authentication: AllowedAuthentication = SmtpKnownAuthenticationType.ALL
    allow_plaintext_credentials: bool = False


class Channel:
    """One connection's protocol state and the plumbing of its flows."""

    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.parser = ReplyParser()
        self.capabilities = Capabilities.none()
        self.alive = False
        self.data_started = False
        self.closing_reply: Reply | None = None
        self.info: ConnectionInfo | None = None
        self._transport: TransportDetails | None = None

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

    def ensure_nothing_unread(self, before: str) -> None:
        """Raise when the server sent something no command asked for: reading it as the reply
        to what comes next would attribute a verdict to the wrong command."""
        if self.parser.buffered:
            self.alive = False
            raise SmtpProtocolError(f"the server sent {self.parser.buffered} byte(s) nobody asked "
                                    f"for before {before}")

    def _command(self, line: bytes, phase: str, shown: str | None = None) -> Flow[Reply]:
        self.ensure_nothing_unread(phase)
        if self.tracing:
            self._trace_out(line, shown)
        yield Write(line, phase, self.settings.timeout)
        return (yield from self._read_reply(phase, self.settings.timeout))

    def _read_reply(self, phase: str, timeout: float) -> Flow[Reply]:
        """The next reply (see ``_read_replies``)."""
        return (yield from self._read_replies((phase,), timeout))[0]

    def _read_replies(self, phases: Sequence[str], timeout: float) -> Flow[list[Reply]]:
        """One reply per phase, in order, each within ``timeout`` however slowly it trickles in.
        After a 421 the server is closing: every reply still awaited is that 421, unread."""
        parser = self.parser
        tracing = self.tracing
        replies: list[Reply] = []
        for phase in phases:
            reply = self.closing_reply
            if reply is None:
                deadline = 0.0
                while (reply := parser.next_reply()) is None:
                    if deadline:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise SmtpTimeoutError(phase, timeout)
                    else:
                        deadline, remaining = time.monotonic() + timeout, timeout
                    try:
                        data = yield Read(phase, remaining)
                    except SmtpTimeoutError:
                        raise SmtpTimeoutError(phase, timeout) from None
                    if not data:
                        raise ConnectionLostError(
                            f"the server closed the connection during {phase}")
                    parser.feed(data)
                if reply.code == SERVICE_CLOSING:
                    self.alive = False
                    self.closing_reply = reply
                if tracing:
                    for line in reply.lines[:-1]:
                        trace.debug("S: %d-%s", reply.code, line)
                    trace.debug("S: %d %s", reply.code, reply.lines[-1])
            replies.append(reply)
        return replies

    @property
    def tracing(self) -> bool:
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

    def __init__(self, session: Channel) -> None:
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


