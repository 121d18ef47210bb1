"""What a client does across connections, written once for the sync and asyncio clients.

``ClientCore`` keeps the current ``Session``, opens a new one on demand, checks that an idle
connection is still there before reusing it, authenticates once per connection, and retries a
transaction once on a fresh connection when the server turned out to have closed the old one
before any message data was sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from email.message import Message

from mailwire.conversation.requests import CheckIdle, Close, Flow
from mailwire.conversation.session import SERVICE_CLOSING, Session, SessionSettings
from mailwire.errors import AuthenticationError, ConnectionLostError, SmtpResponseError
from mailwire.message import MessageInput, prepare
from mailwire.protocol.replies import Reply
from mailwire.results import ConnectionInfo, SendResult

BAD_CREDENTIALS = 535
REPLAYABLE = (Message, bytes, bytearray, memoryview, str, os.PathLike)


class ClientCore:
    """Connection management shared by every client front."""

    def __init__(self, settings: Callable[[], SessionSettings]) -> None:
        self._settings = settings
        self.session: Session | None = None
        self.authenticated = False

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.alive

    def ready(self, *, authenticated: bool) -> Flow[Session]:
        """A usable session: the current one if the server is still there, else a new one."""
        session = self.session
        if session is not None and session.alive:
            idle = yield CheckIdle()
            if not idle or session.parser.buffered:
                session.alive = False
        if session is not None and not session.alive:
            yield Close()
        if session is None or not session.alive:
            self.forget()
            session = Session(self._settings())
            yield from session.open()
            self.session = session
        if authenticated and not self.authenticated and session.settings.credentials:
            yield from session.authenticate()
            self.authenticated = True
        return session

    def connect(self) -> Flow[ConnectionInfo]:
        yield from self.drop()
        session = yield from self.ready(authenticated=True)
        assert session.info is not None
        return session.info

    def info(self, *, authenticated: bool = False) -> Flow[ConnectionInfo]:
        session = yield from self.ready(authenticated=authenticated)
        assert session.info is not None
        return session.info

    def validate_credentials(self) -> Flow[bool]:
        yield from self.drop()
        try:
            yield from self.ready(authenticated=True)
        except AuthenticationError as error:
            if error.code == BAD_CREDENTIALS:
                return False
            raise
        return True

    def noop(self) -> Flow[Reply]:
        session = yield from self.ready(authenticated=False)
        return (yield from session.noop())

    def send(
        self,
        message: MessageInput,
        sender: str | None,
        recipients: str | Iterable[str] | None,
    ) -> Flow[SendResult]:
        """One message; resent once on a new connection if the old one was found closed."""
        prepared = prepare(message, sender, recipients)
        reused = self.connected
        session = yield from self.ready(authenticated=True)
        try:
            return (yield from session.transaction(prepared))
        except (ConnectionLostError, SmtpResponseError) as error:
            closed = isinstance(error, ConnectionLostError) or error.code == SERVICE_CLOSING
            if not (reused and closed and not session.data_started and _replayable(message)):
                raise
        prepared = prepare(message, sender, recipients)
        session = yield from self.ready(authenticated=True)
        return (yield from session.transaction(prepared))

    def quit(self) -> Flow[None]:
        session = self.session
        if session is not None and session.alive:
            yield from session.quit()
        elif session is not None:
            yield Close()
        self.forget()

    def drop(self) -> Flow[None]:
        """Close the connection without QUIT (also one the server has already given up)."""
        if self.session is not None:
            self.session.alive = False
            yield Close()
        self.forget()

    def forget(self) -> None:
        self.session = None
        self.authenticated = False


def _replayable(message: MessageInput) -> bool:
    return isinstance(message, REPLAYABLE)
