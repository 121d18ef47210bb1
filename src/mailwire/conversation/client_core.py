"""What a client does across connections, written once for the sync and asyncio clients.

``ClientCore`` keeps the current ``Session``, opens a new one on demand, checks that an idle
connection is still there before reusing it, and authenticates once per connection with the
login settings in force at that moment (a change of credentials or mechanisms after a login
takes effect on a new connection). Every message goes through the one ``Pipeline``, fed by the
``send`` calls (``direct``) and by any ``send_many`` attached to it; ``motor`` is the pipeline run
under way, driven by whichever caller holds the connection (see the drivers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from mailwire.conversation.bulk import DEFAULT_MAX_IN_FLIGHT
from mailwire.conversation.channel import Login
from mailwire.conversation.pipeline import Pipeline
from mailwire.conversation.requests import CheckIdle, Close, Flow
from mailwire.conversation.session import Session, SessionSettings
from mailwire.conversation.stepper import Stepper
from mailwire.conversation.tickets import DirectFeed, Feed, Ticket
from mailwire.errors import AuthenticationError
from mailwire.message import PreparedMessage, prepare
from mailwire.message.dkim_signer import DkimSigner
from mailwire.outgoing import Outgoing
from mailwire.protocol.replies import Reply
from mailwire.results import ConnectionInfo

BAD_CREDENTIALS = 535


class ClientCore:
    """Connection management and the message pipeline shared by every client front."""

    def __init__(self, settings: Callable[[], SessionSettings], *,
                 login: Callable[[], Login] | None = None,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        self._settings = settings
        self._login = login
        self.session: Session | None = None
        self.direct: DirectFeed = DirectFeed(max_in_flight)
        self.feeds: list[Feed] = [self.direct]
        self.motor: Stepper[float | None] | None = None

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.state.live

    # -- connections ---------------------------------------------------------------------------

    def ready(self, *, authenticated: bool) -> Flow[Session]:
        """A usable session: the current one if the server is still there, else a new one."""
        session = self.session
        if session is not None and session.state.usable:
            idle = yield CheckIdle()
            if not idle or session.parser.buffered:
                session.state.fail()
        if session is not None and authenticated and self._login is not None \
                and session.state.usable:
            login = self._login()
            if session.authenticated and login != session.settings.login:
                yield from session.quit()
            elif not session.authenticated:
                session.settings = replace(
                    session.settings, credentials=login.credentials,
                    allowed_authentication=login.allowed_authentication,
                    allow_plaintext_credentials=login.allow_plaintext_credentials)
        if session is not None and not session.state.usable:
            yield from session.close()
            self.forget()
            session = None
        if session is None:
            session = Session(self._settings())
            yield from session.open()
            self.session = session
        if authenticated and not session.authenticated and session.settings.credentials:
            yield from session.authenticate()
            session.authenticated = True
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

    def quit(self) -> Flow[None]:
        session = self.session
        if session is not None:
            yield from session.quit()
        self.forget()

    def drop(self) -> Flow[None]:
        """Close the connection without QUIT (also one the server has already given up)."""
        if self.session is not None:
            yield from self.session.close()
        else:
            yield Close()
        self.forget()

    def forget(self) -> None:
        self.session = None

    # -- messages ------------------------------------------------------------------------------

    def ticket(self, outgoing: Outgoing, default_sender: str | None = None,
               dkim_signer: DkimSigner | None = None) -> Ticket:
        """A ticket for ``send``: the message is read (envelope, headers) here, so that bad input
        fails before any connection is made."""
        ticket = Ticket(outgoing, self.direct, default_sender=default_sender,
                        dkim_signer=dkim_signer)
        ticket.prepared = self.prepare(ticket)
        return ticket

    def prepare(self, ticket: Ticket) -> PreparedMessage:
        outgoing = ticket.outgoing
        return prepare(outgoing.message, outgoing.sender, outgoing.addresses(),
                       default_sender=ticket.default_sender, dkim_signer=ticket.dkim_signer)

    def attach(self, feed: Feed) -> None:
        self.feeds.append(feed)

    def detach(self, feed: Feed) -> None:
        if feed in self.feeds:
            self.feeds.remove(feed)

    def start_motor(self) -> Stepper[float | None]:
        """The pipeline run under way, or a new one."""
        if self.motor is None or self.motor.finished:
            self.feeds[:] = [feed for feed in self.feeds if not feed.closed]
            self.motor = Stepper(Pipeline(self, self.feeds).run())
        return self.motor
