"""The transaction pipeline: every message any caller sends goes through here.

``Pipeline.run`` takes tickets from the client's feeds (``send`` calls, ``send_many`` inputs),
writes their commands and data in order over the current connection, matches the server's
replies to them in order, and hands every ticket back to its feed with its outcome (decided by
``outcome.decide``). ``send()`` is a pipeline of one message; ``send_many`` and concurrent callers
fill it. It returns when nothing is left to do now, with the connection READY (or closed).

How much goes out before waiting for the server:
- With PIPELINING and CHUNKING, a small message (up to ``PREFRAME_LIMIT`` bytes) is MAIL, every
  RCPT and ``BDAT n LAST`` with its content in one write, and up to ``max_in_flight`` such
  messages are written before their replies are read: many messages per round trip. It is also
  the most messages that can end "unknown" if the connection drops.
- With PIPELINING but DATA, the envelope and DATA go together and the content follows the 354;
  the end of one message goes out with the next message's envelope: one round trip per message.
- A larger message (or one of unknown size) waits for its envelope's verdict before its data; its
  BDAT chunks are pipelined, the replies read as they come: the first refusal stops the transfer
  (RFC 3030: no further chunks) and is reported.
- Without PIPELINING, one command at a time.
- A message written while an earlier one awaits its verdict starts with RSET, and so does one
  after a failed transaction: some servers keep a refused transaction open (Postfix answers the
  next MAIL with "503 nested MAIL command" after refusing a message at its end of data), and the
  next message must not inherit it.

What is done while the server works, and what is in its way: on a fast link the time between
the server's replies arriving and the next write going out is lost to both sides. So the next
message is read, checked and framed (its ``Attempt`` made) before waiting for replies; when they
come, only what the next write depends on is done (taking the replies in one batch, and catching
a reply that contradicts its transaction); the outcomes of the messages those replies finished
are worked out and reported after the write has gone out.

When a message's transfer must be given up half-way (its stream fails, its caller cancelled), a
BDAT transfer is cut short with RSET and the connection stays usable; a DATA transfer cannot be
cut short, so the connection is dropped: with DATA nothing else is in flight at that point, so no
other message is touched. Any other failure of the connection settles every message in flight
from what was written and answered, and the remaining messages go on a new connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailwire.conversation.envelope import Envelope
from mailwire.conversation.outcome import Attempt, Owed, decide
from mailwire.conversation.requests import Flow, Poll
from mailwire.conversation.session import Session
from mailwire.conversation.tickets import Feed, Ticket
from mailwire.errors import (
    ConnectionLostError,
    DeliveryUnknownError,
    MessageError,
    SmtpConnectionError,
    SmtpError,
    SmtpProtocolError,
    SmtpResponseError,
)
from mailwire.message import PreparedMessage
from mailwire.protocol import commands
from mailwire.protocol.framing import DataFramer
from mailwire.protocol.replies import Reply
from mailwire.results import SendResult

WRITE_BUFFER = 256 * 1024
"""Bytes gathered before a write: message data streams in pieces of about this size."""
PREFRAME_LIMIT = 64 * 1024
"""Messages up to this size are framed whole and written with their envelope."""
MAX_UNANSWERED_CHUNKS = 4
"""BDAT chunks of one message written ahead of their replies."""


class CoreAccess(Protocol):
    """What the pipeline needs of the client core (``client_core.ClientCore``)."""

    session: Session | None

    def ready(self, *, authenticated: bool) -> Flow[Session]: ...

    def forget(self) -> None: ...

    def prepare(self, ticket: Ticket) -> PreparedMessage: ...


@dataclass(slots=True)
class Unit:
    """A piece of what one message writes: bytes, the replies they will get, and when the
    conversation must hear those replies before it goes on."""

    data: bytes
    owed: tuple[Owed, ...] = ()
    shown: tuple[str | bytes, ...] = ()
    wait: bool = False
    end: bool = False
    content: bool = False
    chunk: bool = False


@dataclass(slots=True)
class Abandon:
    """Give up the transfer by dropping the connection (the end of data is never written)."""

    error: SmtpError


class Pipeline:
    """One run of the pipeline over the client's connection (see the module docstring)."""

    def __init__(self, core: CoreAccess, feeds: Sequence[Feed]) -> None:
        self.core = core
        self.feeds = feeds
        self.flight: deque[Attempt] = deque()
        self.owed: deque[tuple[Attempt | None, Owed]] = deque()
        self.staged: deque[Ticket] = deque()
        self.writing: tuple[Attempt, Iterator[Unit | Abandon]] | None = None
        self.blocked: Attempt | None = None
        self.renew = False
        self.reused = False
        self.wait: float | None = None
        self._out = bytearray()
        self._shown: list[str | bytes] = []
        self._write_phase = "MAIL"
        self.settled: deque[tuple[Ticket, SendResult | SmtpError]] = deque()
        self._made: tuple[Session, Attempt] | None = None
        """The next message's attempt (envelope, wire form), made while the server worked."""
        self.answered: list[Attempt] = []
        """Messages whose every reply is in, settled once the next write has gone out."""

    @property
    def max_in_flight(self) -> int:
        """The smallest window any feed asks for (``send_many(max_in_flight=...)``)."""
        smallest = 0
        for feed in self.feeds:  # a loop: this is asked twice per message
            window = feed.max_in_flight
            if window < smallest or not smallest:
                smallest = window
        return smallest

    @property
    def unanswered(self) -> int:
        """Messages in flight that still await a reply (those answered in the last read are
        settled after the next write, and do not hold up that write)."""
        return len(self.flight) - len(self.answered)

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Flow[float | None]:
        """Send until there is nothing to do now; returns seconds until a feed may have more,
        or None. Any exception that leaves this flow (cancellation included) settles what was
        in flight from what had been written and answered, and breaks the connection."""
        try:
            return (yield from self._run())
        except BaseException as error:
            self._report_settled()
            self._give_up(error)
            raise

    def _run(self) -> Flow[float | None]:
        while True:
            session = self.core.session
            if (self.answered and len(self.answered) == len(self.flight) and self.writing is None
                    and session is not None):  # nothing left to write first
                try:
                    self._settle_answered()
                except SmtpError as error:
                    yield from self._connection_failed(session, error)
                    continue
            idle = not self.flight and self.writing is None
            if idle:
                self._report_settled()
            if idle and self.renew:
                yield from self._retire()
            if idle and not self.staged:
                self._stage(1)
                if not self.staged:
                    yield from self._close_if_finished()
                    return self.wait
            session = self.core.session
            if session is None or (not self.flight and self.writing is None):
                session = yield from self._session()
                if session is None:
                    continue
            try:
                yield from self._write(session)
                if self.owed:
                    yield from self._read(session)
            except SmtpError as error:
                yield from self._connection_failed(session, error)

    def _stage(self, most: int) -> None:
        """Take up to ``most`` tickets from the feeds, within what may be in flight at once.
        A message is taken when it is about to be written (or read ahead while the server
        works), one at a time: the others stay with the feed for the other connections."""
        self.wait = None
        room = min(most, self.max_in_flight - self.unanswered - len(self.staged))
        for _ in range(room):
            ticket = self._take()
            if ticket is None:
                return
            self.staged.append(ticket)

    def _take(self) -> Ticket | None:
        session = self.core.session
        started = session.messages_started if session is not None else 0
        for feed in self.feeds:
            limit = feed.connection_limit
            if limit is not None and started + len(self.staged) >= limit:
                self.renew = self.renew or bool(started)
                continue
            taken = feed.take()
            if isinstance(taken, Ticket):
                return taken
            if taken is not None:
                self.wait = taken if self.wait is None else min(self.wait, taken)
        return None

    def _session(self) -> Flow[Session | None]:
        """The connection to write on; None when it could not be opened (the staged tickets
        were then settled or queued again by their feeds)."""
        session = self.core.session
        if session is not None and (self.flight or self.writing is not None):
            return session
        before = session if session is not None and session.state.usable else None
        try:
            session = yield from self.core.ready(authenticated=True)
        except SmtpError as error:
            staged, self.staged = self.staged, deque()
            for ticket in staged:
                ticket.reused = False
                self._finish_ticket(ticket, error)
            for feed in self.feeds:
                feed.connect_failed()
            return None
        for feed in self.feeds:
            feed.connected()
        if session is not before:
            self.reused = False
        elif before is not None:
            self.reused = True
        return session

    def _close_if_finished(self) -> Flow[None]:
        """A connection the server is closing (421) or that broke is closed now, not left
        for the next operation to find."""
        session = self.core.session
        if session is not None and not session.state.usable:
            yield from session.close()
            self.core.forget()

    def _retire(self) -> Flow[None]:
        """Close a connection that has served its share (or met a transient failure)."""
        self.renew = False
        session = self.core.session
        if session is not None:
            yield from session.quit()
        self.core.forget()

    # -- writing -------------------------------------------------------------------------------

    def _write(self, session: Session) -> Flow[None]:
        """Write everything that may go out before the next reply is needed."""
        while self.blocked is None:
            if self.writing is None:
                if self.unanswered >= self.max_in_flight:
                    break
                if not self.staged:
                    self._stage(1)
                    if not self.staged:
                        break
                if not session.state.open_for_commands:
                    break
                attempt = self._start(session, self.staged.popleft())
                if attempt is None:
                    continue
            assert self.writing is not None
            attempt, units = self.writing
            unit = next(units, None)
            if unit is None:
                self.writing = None
                if not attempt.owed:
                    self.answered.append(attempt)  # settled in order, after this write
                continue
            if isinstance(unit, Abandon):
                yield from self._abandon(session, attempt, unit.error)
                return
            if not self.owed and not self._out:
                session.ensure_nothing_unread("the message data" if unit.content else "MAIL")
            self._add(attempt, unit)
            if unit.wait:
                self.blocked = attempt
            if unit.chunk:
                yield from self._flush(session)
                yield from self._read_chunk_replies(session, attempt)
            elif len(self._out) >= WRITE_BUFFER:
                yield from self._flush(session)
        yield from self._flush(session)
        if self.answered:
            self._settle_answered()
        if self.settled:
            self._report_settled()

    def _start(self, session: Session, ticket: Ticket) -> Attempt | None:
        """``ticket``'s attempt on ``session``; None when it cannot be sent (and was settled)."""
        if ticket.cancelled:
            self._finish_ticket(ticket, _withdrawn())
            return None
        ticket.reused = self.reused
        prepared = self._prepared(ticket)
        if prepared is None:
            return None
        ticket.prepared = None
        attempt = self._made_for(session, ticket)
        if attempt is not None:
            self._made = None
        else:
            try:
                attempt = self._make(session, prepared, ticket)
            except Exception as error:
                self._unreadable(ticket, error)
                return None
        if not self.owed and not self._out:
            session.ensure_nothing_unread("MAIL")
        if session.needs_reset or self.flight:
            session.needs_reset = False
            self._out += commands.RSET
            self._shown.append("RSET")
            self.owed.append((None, Owed.RSET))
        session.state.begin_message()
        session.messages_started += 1
        self.flight.append(attempt)
        self.writing = (attempt, script(attempt, session.capabilities.pipelining))
        return attempt

    def _made_for(self, session: Session, ticket: Ticket) -> Attempt | None:
        """``ticket``'s attempt if it was made ahead for ``session``."""
        made = self._made
        if made is not None and made[0] is session and made[1].ticket is ticket:
            return made[1]
        return None

    @staticmethod
    def _make(session: Session, prepared: PreparedMessage, ticket: Ticket) -> Attempt:
        """``ticket``'s attempt on ``session``: its envelope, and its framed form when it is
        small enough to go with its envelope."""
        envelope = session.envelope(prepared, ticket.outgoing)
        chunked = session.capabilities.chunking
        framed = None
        if (prepared.size is not None and prepared.size <= PREFRAME_LIMIT
                and session.capabilities.pipelining):
            framed = frame_whole(prepared, envelope.check_eight_bit, dot_stuff=not chunked)
        return Attempt(ticket, prepared, envelope, chunked, framed)

    def _prepared(self, ticket: Ticket) -> PreparedMessage | None:
        """``ticket``'s message read and checked; None when it cannot be (and was settled)."""
        if ticket.prepared is None:
            try:
                ticket.prepared = self.core.prepare(ticket)
            except Exception as error:
                self._unreadable(ticket, error)
                return None
        return ticket.prepared

    def _unreadable(self, ticket: Ticket, error: Exception) -> None:
        """Settle ``ticket``, whose message could not be read, checked or framed."""
        self._finish_ticket(ticket, error if isinstance(error, SmtpError)
                            else MessageError(f"reading the message failed: {error}"))

    def _prepare_ahead(self, session: Session) -> None:
        """While the server works on what was written: read the next staged message and make
        its envelope and wire form, so that it is ready to go when the replies come (messages
        that cannot be read are settled and leave the queue)."""
        if not self.staged and self.flight:
            self._stage(1)
        while self.staged:
            ticket = self.staged[0]
            if ticket.cancelled:
                return
            if self._made_for(session, ticket) is not None:
                return
            prepared = self._prepared(ticket)
            if prepared is not None:
                try:
                    self._made = (session, self._make(session, prepared, ticket))
                except Exception as error:
                    ticket.prepared = None
                    self._unreadable(ticket, error)
                else:
                    return
            self.staged.popleft()

    def _add(self, attempt: Attempt, unit: Unit) -> None:
        if unit.content:
            attempt.content_started = True
        if unit.end:
            attempt.end_written = True
            self._write_phase = "end of data"
        elif unit.content and self._write_phase != "end of data":
            self._write_phase = "message data"
        self._out += unit.data
        self._shown.extend(unit.shown)
        for kind in unit.owed:
            self.owed.append((attempt, kind))
        attempt.owed += len(unit.owed)

    def _flush(self, session: Session) -> Flow[None]:
        if not self._out:
            return
        data, shown, phase = bytes(self._out), self._shown, self._write_phase
        self._out, self._shown, self._write_phase = bytearray(), [], "MAIL"
        yield from session.write(data, phase, shown)

    def _abandon(self, session: Session, attempt: Attempt, error: SmtpError) -> Flow[None]:
        """A DATA transfer given up half-way: drop the connection before its end goes out."""
        self._out.clear()
        self._shown.clear()
        attempt.abandoned = error
        yield from self._connection_failed(session, error)

    # -- reading -------------------------------------------------------------------------------

    def _read(self, session: Session) -> Flow[None]:
        """Wait for the next reply, then take every reply already received."""
        replies = session.buffered_replies(len(self.owed))
        if not replies:
            if self.settled:
                self._report_settled()
            self._prepare_ahead(session)
            replies = yield from session.next_replies(len(self.owed), self.owed[0][1].value,
                                                      session.settings.timeout)
        for reply in replies:
            self._take_reply(session, reply)
        if not self.owed:
            session.ensure_nothing_unread("anything else")

    def _read_chunk_replies(self, session: Session, attempt: Attempt) -> Flow[None]:
        """Between BDAT chunks: take the replies already here without waiting, and wait when
        too many chunks are unanswered."""
        if self.owed:
            data = yield Poll()
            if data:
                session.parser.feed(data)
        for reply in session.buffered_replies(len(self.owed)):
            self._take_reply(session, reply)
        while self.owed and attempt.owed > MAX_UNANSWERED_CHUNKS:
            yield from self._read(session)

    def _take_reply(self, session: Session, reply: Reply) -> None:
        attempt, kind = self.owed.popleft()
        if attempt is None:
            if reply.code != 250:
                raise SmtpResponseError("the server refused RSET", reply=reply)
            return
        attempt.take(kind, reply)
        if kind is Owed.DATA and reply.code == 354 and attempt.envelope_refusal is not None:
            raise SmtpProtocolError("the server accepted DATA for a failed transaction",
                                    reply=reply)
        if kind is Owed.END and reply.code < 300:
            contradiction = attempt.contradiction()
            if contradiction is not None:
                raise contradiction
        if attempt.owed:
            return
        if self.blocked is attempt:
            self.blocked = None
        if self.writing is None or self.writing[0] is not attempt:
            self.answered.append(attempt)

    # -- settling ------------------------------------------------------------------------------

    def _settle_answered(self) -> None:
        """Settle the messages whose every reply came in the last read. Done after the next
        write has gone out, so that working out their outcomes is not in the way of the
        server (a reply that contradicts the transaction was caught as it came)."""
        session = self.core.session
        answered, self.answered = self.answered, []
        if session is not None:
            for attempt in answered:
                self._settle_if_answered(session, attempt)

    def _settle_if_answered(self, session: Session, attempt: Attempt) -> None:
        """Settle ``attempt`` once it has written all it will and every reply is in."""
        flight = self.flight
        if attempt.owed:
            return
        first = bool(flight) and flight[0] is attempt
        if not first and attempt not in flight:
            return
        outcome = decide(attempt)
        if isinstance(outcome, SmtpProtocolError):
            raise outcome  # still in flight: the connection's failure settles it
        if first:
            flight.popleft()
        else:
            flight.remove(attempt)
        if attempt.open_on_server:
            session.needs_reset = True
        session.state.end_message()
        self.settled.append((attempt.ticket, outcome))

    def _report_settled(self) -> None:
        """Hand the outcomes settled so far to their feeds. Done after the next write has gone
        out (and before waiting), so that reporting a result is not in the way of the server."""
        settled = self.settled
        while settled:
            ticket, outcome = settled.popleft()
            self._finish_ticket(ticket, outcome)

    def _finish_ticket(self, ticket: Ticket, outcome: SendResult | SmtpError) -> None:
        if ticket.feed.finish(ticket, outcome):
            self.renew = True

    def _connection_failed(self, session: Session, error: SmtpError) -> Flow[None]:
        """The connection cannot go on: settle what was on it, close it, and keep the staged
        tickets for the next connection."""
        self._report_settled()
        self._settle_all(session, error)
        yield from session.close()
        self.core.forget()

    def _give_up(self, error: BaseException) -> None:
        """The run ends by an exception that is not the server's doing (cancellation, an
        interrupt, a bug): the connection is broken and what was on it settled."""
        session = self.core.session
        if session is not None and (self.flight or not session.state.quiet
                                    or not session.state.live):
            session.state.fail(error)
            self._settle_all(session, error if isinstance(error, SmtpError)
                             else _interrupted(error))
        staged, self.staged = self.staged, deque()
        for ticket in reversed(staged):
            ticket.feed.put_back(ticket)

    def _settle_all(self, session: Session, cause: SmtpError) -> None:
        """Settle every message in flight after ``cause`` ended the connection. The message
        whose reply (or write) failed gets ``cause``; the others lost their connection."""
        session.state.fail(cause)
        culprit = (self.owed[0][0] if self.owed
                   else self.writing[0] if self.writing is not None else None)
        flight, self.flight = self.flight, deque()
        self.answered.clear()
        self.owed.clear()
        self.writing = None
        self.blocked = None
        self._out.clear()
        self._shown.clear()
        for attempt in flight:
            session.state.end_message()
            own = cause if attempt is culprit else lost_connection(cause)
            self._finish_ticket(attempt.ticket, decide(attempt, own))


def lost_connection(cause: SmtpError) -> SmtpError:
    """What another message's failure means for a message on the same connection."""
    if isinstance(cause, SmtpConnectionError) and not isinstance(cause, DeliveryUnknownError):
        return cause
    lost = ConnectionLostError(f"the connection failed ({cause})")
    lost.__cause__ = cause
    return lost


def _interrupted(error: BaseException) -> SmtpError:
    return ConnectionLostError(f"the connection was given up when its work was interrupted "
                               f"({type(error).__name__})")


# -- what one message writes ---------------------------------------------------------------------


def script(attempt: Attempt, pipelining: bool) -> Iterator[Unit | Abandon]:
    """The units ``attempt`` writes, in order; resumed after the replies a waiting unit needs."""
    envelope = attempt.envelope
    if attempt.chunked and attempt.framed is not None:
        framed = attempt.framed
        yield Unit(envelope.mail + b"".join(envelope.rcpts)
                   + commands.bdat(len(framed), last=True) + framed,
                   (Owed.MAIL, *([Owed.RCPT] * len(envelope.rcpts)), Owed.END),
                   (*_envelope_lines(envelope), f"BDAT {len(framed)} LAST <message data>"),
                   end=True, content=True)
        return
    if pipelining:
        data = b"" if attempt.chunked else commands.DATA
        yield Unit(envelope.mail + b"".join(envelope.rcpts) + data,
                   (Owed.MAIL, *([Owed.RCPT] * len(envelope.rcpts)),
                    *(() if attempt.chunked else (Owed.DATA,))),
                   (*_envelope_lines(envelope), *(() if attempt.chunked else ("DATA",))),
                   wait=True)
    else:
        yield from _envelope_step_by_step(attempt)
    if not attempt.may_send_content:
        return
    if attempt.chunked:
        yield from _bdat_content(attempt, pipelining)
    else:
        yield from _data_content(attempt, pipelining)


def _envelope_step_by_step(attempt: Attempt) -> Iterator[Unit]:
    envelope = attempt.envelope
    yield Unit(envelope.mail, (Owed.MAIL,), _envelope_lines(envelope)[:1], wait=True)
    if attempt.envelope_refusal is not None:
        return
    for line in envelope.rcpts:
        yield Unit(line, (Owed.RCPT,), (line,), wait=True)
    if attempt.envelope_refusal is not None or attempt.chunked:
        return
    yield Unit(commands.DATA, (Owed.DATA,), ("DATA",), wait=True)


def _data_content(attempt: Attempt, pipelining: bool) -> Iterator[Unit | Abandon]:
    ticket = attempt.ticket
    if attempt.framed is not None:
        if ticket.cancelled:
            yield Abandon(_withdrawn())
            return
        yield Unit(attempt.framed, (Owed.END,), ("<message data> .",), end=True, content=True,
                   wait=not pipelining)
        return
    pieces = framed_pieces(attempt.prepared, DataFramer(), attempt.envelope.check_eight_bit)
    try:
        piece = next(pieces)
        for following in pieces:
            if ticket.cancelled:
                yield Abandon(_withdrawn())
                return
            yield Unit(piece, content=True)
            piece = following
    except MessageError as error:
        yield Abandon(error)
        return
    if ticket.cancelled:
        yield Abandon(_withdrawn())
        return
    yield Unit(piece, (Owed.END,), ("<message data> .",), end=True, content=True,
               wait=not pipelining)


def _bdat_content(attempt: Attempt, pipelining: bool) -> Iterator[Unit]:
    ticket = attempt.ticket
    pieces = framed_pieces(attempt.prepared, DataFramer(dot_stuff=False),
                           attempt.envelope.check_eight_bit)
    try:
        piece = next(pieces)
        for following in pieces:
            if ticket.cancelled or attempt.chunk_refusal is not None:
                break
            yield Unit(commands.bdat(len(piece), last=False) + piece, (Owed.CHUNK,),
                       (f"BDAT {len(piece)} <message data>",), content=True, chunk=True,
                       wait=not pipelining)
            piece = following
        else:
            if not (ticket.cancelled or attempt.chunk_refusal is not None):
                yield Unit(commands.bdat(len(piece), last=True) + piece, (Owed.END,),
                           (f"BDAT {len(piece)} LAST <message data>",), end=True,
                           content=True, wait=not pipelining)
                return
    except MessageError as error:
        attempt.abandoned = error
    if attempt.abandoned is None and attempt.chunk_refusal is None:
        attempt.abandoned = _withdrawn()
    attempt.reset_sent = True
    yield Unit(commands.RSET, (Owed.RSET,), ("RSET",), wait=True)


def _withdrawn() -> MessageError:
    return MessageError("the send was cancelled before the message's end was written; "
                        "nothing was delivered")


def _envelope_lines(envelope: Envelope) -> tuple[bytes, ...]:
    """The envelope's lines for the trace (decoded only when it is on)."""
    return (envelope.mail, *envelope.rcpts)


# -- message data ---------------------------------------------------------------------------------


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


def frame_whole(prepared: PreparedMessage, check_eight_bit: bool, *, dot_stuff: bool) -> bytes:
    """The wire form of a small message (for DATA, end marker included), framed in one go."""
    try:
        content = prepared.read_whole()
    except Exception as error:
        raise MessageError(f"reading the message failed: {error}") from error
    if check_eight_bit and not content.isascii():
        raise MessageError("the message has 8-bit data and the server does not offer 8BITMIME")
    framer = DataFramer(dot_stuff=dot_stuff)
    return framer.frame(content, normalized=prepared.normalized) + framer.finish()
