"""The SMTP conversation over one connection, written once as generators of I/O requests.

``Session`` offers the flows of a connection: ``open`` (connect, greeting, EHLO, TLS in the
chosen mode) here; ``authenticate`` in ``authentication.py``; ``noop``, ``reset`` and ``quit`` in
``channel.py``. Messages go through the pipeline (``pipeline.py``). Drivers run the flows; they
never decide anything about SMTP.

Rules kept here:
- STARTTLS is sent alone; bytes received after its 220 and before TLS are an attack and fatal;
  everything learned before TLS is forgotten and EHLO is sent again.
- A mode that requires TLS never continues in plaintext; an automatic mode never falls back to
  plaintext once a TLS attempt has failed.
- Credentials go over TLS only, unless the caller explicitly allows plaintext.
"""

from __future__ import annotations

import logging
import time

from mailwire.conversation.authentication import AuthenticationFlows
from mailwire.conversation.channel import SessionSettings
from mailwire.conversation.envelope import Envelope, build_envelope
from mailwire.conversation.requests import Close, Flow, Open, StartTls
from mailwire.errors import (
    GreetingRefusedError,
    SmtpResponseError,
    SmtpSecurityError,
    SmtpTimeoutError,
    TlsNotSpokenError,
)
from mailwire.message import PreparedMessage
from mailwire.outgoing import Outgoing
from mailwire.protocol import commands
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import SERVICE_CLOSING, Reply
from mailwire.results import ConnectionInfo
from mailwire.security import IMPLICIT_TLS_PORT, SecurityOptions

_log = logging.getLogger("mailwire.connection")

__all__ = ["SERVICE_CLOSING", "Session", "SessionSettings"]


class Session(AuthenticationFlows):
    """One SMTP connection: opening it in the chosen security mode, authenticating, and (from
    ``TransactionFlows`` and ``Channel``) sending and the small commands."""

    def __init__(self, settings: SessionSettings) -> None:
        super().__init__(settings)
        self._tls_failed = False
        self._greeted_after: float | None = None

    # -- opening -------------------------------------------------------------------------------

    def open(self) -> Flow[ConnectionInfo]:
        """Connect in the configured mode and greet; no authentication yet."""
        self.state.open()
        try:
            info = yield from self._open()
        except BaseException as error:
            self.state.fail(error)
            self.state.closed()
            if isinstance(error, Exception):
                yield Close()
            raise
        self.state.ready()
        return info

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
                self.state.closed()
                yield Close()
                self.state.open()
            else:
                yield from self._hello()
                return self._finish_open(greeting, SecurityOptions.SSL_IMPLICIT)
        self._transport = yield Open(self.settings.endpoint, tls=False,
                                     timeout=self.settings.timeout)
        try:
            greeting = yield from self._read_reply("greeting", self.settings.greeting_timeout)
        except SmtpTimeoutError:
            if self.parser.buffered:
                raise
            try:
                self._transport = yield StartTls(timeout=self.settings.timeout)
            except SmtpTimeoutError as silent:
                raise SmtpTimeoutError(
                    silent.phase, silent.seconds, silent.where,
                    hint=f"it sent no greeting within greeting_timeout "
                         f"({self.settings.greeting_timeout:g} s) and no TLS answer either: a "
                         "server that greets later still (raise greeting_timeout), or not an "
                         "SMTP server") from None
            except TlsNotSpokenError:
                # Not TLS in answer to the ClientHello: most likely the plaintext greeting of a
                # server that greets late (a tarpit). One more connection, with time to greet.
                self._tls_failed = True
                self.state.closed()
                yield Close()
                self.state.open()
                greeting = yield from self._late_greeting()
            else:
                greeting = yield from self._read_greeting(self.settings.timeout)
                yield from self._hello()
                return self._finish_open(greeting, SecurityOptions.SSL_IMPLICIT)
        self._check_greeting(greeting)
        yield from self._hello()
        if self.capabilities.starttls:
            yield from self._start_tls()
            return self._finish_open(greeting, SecurityOptions.SSL_EXPLICIT)
        where = self.settings.endpoint.describe()
        if self._greeted_after is not None:
            raise SmtpSecurityError(
                f"{where} greeted in plaintext only after {self._greeted_after:.1f} s, later "
                f"than greeting_timeout ({self.settings.greeting_timeout:g} s), so the TLS "
                "handshake tried in the meantime failed; it offers no STARTTLS, and AUTO never "
                "falls back to plaintext after a TLS attempt: set greeting_timeout above "
                f"{self._greeted_after:.0f} s, or choose the security mode explicitly")
        if self.settings.security is SecurityOptions.SSL_AUTO or self._tls_failed:
            reason = "a TLS attempt failed" if self._tls_failed else "SSL_AUTO requires TLS"
            raise SmtpSecurityError(
                f"{where} offers neither implicit TLS nor STARTTLS, and {reason}"
            )
        return self._finish_open(greeting, SecurityOptions.NONE)

    def _late_greeting(self) -> Flow[Reply]:
        """A second connection for a server that answered the TLS handshake in plaintext: its
        greeting is awaited for ``timeout``, and how late it came is remembered for errors."""
        settings = self.settings
        self._transport = yield Open(settings.endpoint, tls=False, timeout=settings.timeout)
        started = time.monotonic()
        try:
            greeting = yield from self._read_reply("greeting", settings.timeout)
        except SmtpTimeoutError:
            raise SmtpTimeoutError(
                "greeting", settings.timeout, settings.endpoint.describe(),
                hint=f"it was silent for greeting_timeout ({settings.greeting_timeout:g} s), "
                     "then answered the TLS handshake with plaintext, as a server that greets "
                     "late does; a second connection got no greeting either") from None
        self._greeted_after = time.monotonic() - started
        _log.info("%s greeted after %.1f s, later than greeting_timeout (%g s): a "
                  "greeting_timeout above that spares a connection",
                  settings.endpoint.describe(), self._greeted_after, settings.greeting_timeout)
        return greeting

    def _connect(self, *, tls: bool) -> Flow[Reply]:
        self._transport = yield Open(self.settings.endpoint, tls=tls, timeout=self.settings.timeout)
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
            tls_resumed=tls.resumed if tls else False,
        )
        return self.info

    # -- messages ------------------------------------------------------------------------------

    def envelope(self, message: PreparedMessage, outgoing: Outgoing) -> Envelope:
        """The MAIL and RCPT commands for ``message`` (checked against the server's limits)."""
        tls = self.info is not None and self.info.tls_version is not None
        return build_envelope(self.capabilities, message, outgoing, self.settings.dsn, tls=tls)
