"""Sending many messages: the shared work queue and the per-connection worker flow.

Messages come from any iterable, taken one at a time (never materialized). Each connection runs
``worker``; where the server offers PIPELINING the end of one message's data goes out in the same
write as the next message's MAIL, RCPTs and DATA, so each message costs one round trip.

What is promised:
- A message is reported sent only after the server's 2xx for its data.
- A transient failure before that point (a 4xx reply, 421, a dropped connection, a timeout) is
  retried on a fresh connection after a growing delay, up to ``max_attempts`` attempts; then its
  last error is reported. Permanent failures (5xx, bad input) are reported at once.
- A connection lost after the end of a message's data is reported as ``DeliveryUnknownError`` and
  never retried: at most once, not at least once.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from mailwire.conversation.client_core import REPLAYABLE, ClientCore
from mailwire.conversation.envelope import Envelope, EnvelopeOutcome, judge_envelope
from mailwire.conversation.requests import Flow, Sleep, Write
from mailwire.conversation.session import Session
from mailwire.errors import (
    AuthenticationError,
    ConnectionLostError,
    DeliveryUnknownError,
    MessageError,
    SmtpConnectionError,
    SmtpError,
    SmtpProtocolError,
    SmtpResponseError,
    SmtpSecurityError,
    SmtpTimeoutError,
    SmtpUsageError,
)
from mailwire.message import MessageInput, PreparedMessage, prepare
from mailwire.protocol import commands
from mailwire.protocol.framing import DataFramer
from mailwire.results import SendResult


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message with an explicit envelope, for ``send_many`` inputs that need one."""

    message: MessageInput
    sender: str | None = None
    recipients: str | Iterable[str] | None = None


@dataclass(frozen=True, slots=True)
class BulkResult:
    """The outcome of the message at position ``index`` of the input."""

    index: int
    result: SendResult | None
    error: SmtpError | None
    attempts: int

    @property
    def sent(self) -> bool:
        return self.result is not None


@dataclass(frozen=True, slots=True)
class BulkOptions:
    connections: int = 1
    max_attempts: int = 4
    retry_delay: float = 0.5
    max_retry_delay: float = 30.0
    messages_per_connection: int | None = None
    rate_limit: float | None = None

    def __post_init__(self) -> None:
        if self.connections < 1 or self.max_attempts < 1:
            raise SmtpUsageError("connections and max_attempts must be at least 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise SmtpUsageError("rate_limit must be positive (messages per second)")


@dataclass(slots=True)
class Job:
    index: int
    outgoing: Outgoing
    attempts: int = 0


class WorkQueue:
    """Hands out jobs to the workers of every connection; safe to share between threads."""

    def __init__(self, messages: Iterable[MessageInput | Outgoing], options: BulkOptions, *,
                 numbered: Iterable[tuple[int, MessageInput | Outgoing]] | None = None) -> None:
        """Jobs from ``messages`` in order, or from ``numbered`` (input position, message)
        pairs when a share of the input is handed over from elsewhere."""
        self._source: Iterator[tuple[int, MessageInput | Outgoing]] = (
            iter(numbered) if numbered is not None else enumerate(messages))
        self._options = options
        self._lock = threading.Lock()
        self._retries: list[tuple[float, int, Job]] = []
        self._exhausted = False
        self._outstanding = 0
        self._next_slot = 0.0

    def take(self) -> Job | float | None:
        """A job; or seconds to wait before asking again; or None when everything is done."""
        with self._lock:
            now = time.monotonic()
            wait = self._rate_wait(now)
            if wait:
                return wait
            if self._retries and self._retries[0][0] <= now:
                return self._hand_out(heapq.heappop(self._retries)[2], now)
            if not self._exhausted:
                try:
                    index, item = next(self._source)
                except StopIteration:
                    self._exhausted = True
                else:
                    outgoing = item if isinstance(item, Outgoing) else Outgoing(item)
                    self._outstanding += 1
                    return self._hand_out(Job(index, outgoing), now)
            if self._retries:
                return max(self._retries[0][0] - now, 0.001)
            return None if self._outstanding == 0 else 0.01

    def finish(self, job: Job) -> None:
        with self._lock:
            self._outstanding -= 1

    def delay(self, attempts: int) -> float:
        """The back-off after ``attempts`` failures: ``retry_delay``, doubled each time."""
        delay: float = self._options.retry_delay * 2 ** (attempts - 1)
        return min(delay, self._options.max_retry_delay)

    def retry_later(self, job: Job) -> None:
        delay = self.delay(job.attempts)
        with self._lock:
            heapq.heappush(self._retries, (time.monotonic() + delay, job.index, job))

    def _hand_out(self, job: Job, now: float) -> Job:
        job.attempts += 1
        if self._options.rate_limit:
            self._next_slot = max(self._next_slot, now) + 1.0 / self._options.rate_limit
        return job

    def _rate_wait(self, now: float) -> float:
        if not self._options.rate_limit or self._next_slot <= now:
            return 0.0
        return self._next_slot - now


PREFRAME_LIMIT = 64 * 1024


@dataclass(slots=True)
class _Staged:
    """A message made ready for a connection ahead of its turn.

    ``framed`` holds the whole wire form of a small message, framed while the connection waited
    for the server; larger messages are streamed when their turn comes.
    """

    job: Job
    prepared: PreparedMessage
    envelope: Envelope
    session: Session
    framed: bytes | None = None
    chunked: bool = False


@dataclass(slots=True)
class _InFlight:
    """A message whose DATA was accepted and whose content is still to be sent."""

    staged: _Staged
    outcome: EnvelopeOutcome


Report = Callable[[BulkResult], None]


def worker(core: ClientCore, queue: WorkQueue, report: Report, options: BulkOptions,
           *, quit_at_end: bool = True) -> Flow[None]:
    """Send jobs from ``queue`` over ``core``'s connection until the queue is done."""
    yield from _Pipeline(core, queue, report, options).run()
    if quit_at_end:
        yield from core.quit()


class _Pipeline:
    def __init__(self, core: ClientCore, queue: WorkQueue, report: Report,
                 options: BulkOptions) -> None:
        self.core = core
        self.queue = queue
        self.report = report
        self.options = options
        self.in_flight: _InFlight | None = None
        self.staged: _Staged | None = None
        self.needs_reset = False
        self.started_on_connection = 0
        self.retry_pending = False
        self.failed_connects = 0

    def run(self) -> Flow[None]:
        while True:
            session = self.core.session
            if session is not None and not session.alive:
                yield from self.core.drop()
            if self._connection_used_up() and self.in_flight is None:
                yield from self.core.quit()
                self.started_on_connection = 0
                self.retry_pending = False
            item = self._next_item()
            if isinstance(item, float):
                if self.in_flight is None:
                    yield Sleep(item)
                    continue
                item = None
            if item is None and self.in_flight is None:
                if self._connection_used_up():
                    continue
                return
            session = yield from self._session(item)
            if session is None:
                continue
            if session.capabilities.pipelining and session.capabilities.chunking:
                yield from self._chunked_step(session, item)
            elif session.capabilities.pipelining:
                yield from self._pipelined_step(session, item)
            elif item is not None:
                yield from self._single(session, item)

    def _next_item(self) -> Job | _Staged | float | None:
        """The staged message, else a new one; none while the connection is used up (a staged
        message then waits for the next connection)."""
        if self._connection_used_up():
            return None
        if self.staged is not None:
            staged, self.staged = self.staged, None
            return staged
        return self.queue.take()

    def _connection_used_up(self) -> bool:
        """Time for a new connection: the per-connection limit was reached, or a message
        failed transiently and is to be retried on a fresh one."""
        limit = self.options.messages_per_connection
        return self.retry_pending or (limit is not None and self.started_on_connection >= limit)

    def _session(self, item: Job | _Staged | None) -> Flow[Session | None]:
        """The connection's session, opening one if needed; on failure the item is settled."""
        if self.core.connected:
            assert self.core.session is not None
            return self.core.session
        self.needs_reset = False
        self.started_on_connection = 0
        try:
            session = yield from self.core.ready(authenticated=True)
        except SmtpError as error:
            yield from self.core.drop()
            if item is not None:
                self._settle_failure(_job(item), error)
            self.failed_connects += 1
            yield Sleep(self.queue.delay(self.failed_connects))
            return None
        self.failed_connects = 0
        return session

    def _stage(self, session: Session, item: Job | _Staged) -> _Staged | None:
        """``item`` prepared for ``session``; None when it failed (and was settled)."""
        if isinstance(item, _Staged) and item.session is session:
            return item
        chunked = session.capabilities.chunking
        try:
            if isinstance(item, _Staged):
                if item.framed is None or item.chunked == chunked:
                    item.envelope = session.envelope(item.prepared)
                    item.session = session
                    return item
                if not isinstance(item.job.outgoing.message, REPLAYABLE):
                    raise MessageError("the message was framed for a server that no longer "
                                       "answers the same way, and cannot be read again")
                item = item.job
            outgoing = item.outgoing
            prepared = prepare(outgoing.message, outgoing.sender, outgoing.recipients)
            staged = _Staged(item, prepared, session.envelope(prepared), session, chunked=chunked)
            if prepared.size is not None and prepared.size <= PREFRAME_LIMIT:
                staged.framed = _frame_whole(prepared, staged.envelope.check_eight_bit,
                                             dot_stuff=not chunked)
        except SmtpError as error:
            self._settle_failure(_job(item), error)
            return None
        return staged

    def _prefetch(self, session: Session) -> None:
        """Prepare the next message while the server works on what was just sent."""
        if self.staged is not None or self._connection_used_up():
            return
        item = self.queue.take()
        if isinstance(item, Job):
            self.staged = self._stage(session, item)

    def _single(self, session: Session, item: Job | _Staged) -> Flow[None]:
        job = _job(item)
        try:
            if isinstance(item, _Staged) and item.framed is not None:
                raise SmtpUsageError("internal: a pre-framed message on a non-pipelining server")
            outgoing = job.outgoing
            prepared = (item.prepared if isinstance(item, _Staged)
                        else prepare(outgoing.message, outgoing.sender, outgoing.recipients))
            self.started_on_connection += 1
            result = yield from session.transaction(prepared)
        except SmtpError as error:
            if not session.alive:
                yield from self.core.drop()
            self._settle_failure(job, error)
            return
        self._settle(job, result, None)

    def _pipelined_step(self, session: Session, item: Job | _Staged | None) -> Flow[None]:
        """One round trip: the in-flight message's content and the next message's envelope."""
        timeout = session.settings.timeout
        following = self._stage(session, item) if item is not None else None
        in_flight, self.in_flight = self.in_flight, None
        reset = self.needs_reset and following is not None
        out = b""
        if in_flight is not None:
            staged = in_flight.staged
            if staged.framed is not None:
                out = staged.framed
            else:
                try:
                    out = yield from session.stream_body(staged.prepared,
                                                         staged.envelope.check_eight_bit)
                except SmtpError as error:
                    self._settle_failure(staged.job, error)
                    yield from self._connection_failed(session, None, following, error)
                    return
        if reset:
            out += commands.RSET
        if following is not None:
            out += following.envelope.pipelined
        try:
            if in_flight is None:
                session.ensure_nothing_unread("MAIL")
            if out:
                yield Write(out, "end of data" if in_flight else "MAIL", timeout)
        except SmtpError as error:
            yield from self._connection_failed(session, in_flight, following, error)
            return
        if following is not None:
            self.started_on_connection += 1
            self._prefetch(session)
        if in_flight is not None:
            try:
                result = yield from session.data_verdict(in_flight.outcome)
            except SmtpResponseError as error:
                self._settle_failure(in_flight.staged.job, error)
            except SmtpError as error:
                self._settle_failure(in_flight.staged.job, error)
                yield from self._connection_failed(session, None, following, error)
                return
            else:
                self._settle(in_flight.staged.job, result, None)
        if following is None:
            return
        try:
            if reset:
                yield from session.read_reset_reply()
                self.needs_reset = False
            replies = yield from session.read_envelope_replies(following.envelope)
        except SmtpError as error:
            yield from self._connection_failed(session, None, following, error)
            return
        outcome = judge_envelope(following.envelope, replies)
        if outcome.failure is None and replies.data is not None and replies.data.code == 354:
            try:
                session.ensure_nothing_unread("the message data")
            except SmtpError as error:
                yield from self._connection_failed(session, None, following, error)
                return
            self.in_flight = _InFlight(following, outcome)
            return
        if replies.data is not None and replies.data.code == 354:
            failure = SmtpProtocolError("the server accepted DATA for a failed transaction",
                                        reply=replies.data)
            yield from self._connection_failed(session, None, following, failure)
            return
        assert outcome.failure is not None
        self.needs_reset = replies.mail.code == 250
        self._settle_failure(following.job, outcome.failure)
        if not session.alive:
            yield from self.core.drop()

    def _chunked_step(self, session: Session, item: Job | _Staged | None) -> Flow[None]:
        """One round trip for one message: MAIL, RCPTs and ``BDAT n LAST`` with its content."""
        staged = self._stage(session, item) if item is not None else None
        if staged is None:
            return
        if staged.framed is None:
            yield from self._single(session, staged)
            return
        timeout = session.settings.timeout
        envelope = staged.envelope
        reset = self.needs_reset
        out = commands.RSET if reset else b""
        out += envelope.mail + b"".join(envelope.rcpts)
        out += commands.bdat(len(staged.framed), last=True) + staged.framed
        if session.tracing:
            session.trace_envelope(envelope, data=False)
        try:
            session.ensure_nothing_unread("MAIL")
            yield Write(out, "end of data", timeout)
        except SmtpError as error:
            yield from self._connection_failed(session, None, staged, error)
            return
        self.started_on_connection += 1
        self._prefetch(session)
        try:
            if reset:
                yield from session.read_reset_reply()
                self.needs_reset = False
            replies = yield from session.read_envelope_replies(envelope, data=False)
        except SmtpError as error:
            yield from self._connection_failed(session, None, staged, error)
            return
        outcome = judge_envelope(envelope, replies)
        try:
            result = yield from session.data_verdict(outcome)
        except SmtpResponseError as error:
            self.needs_reset = True
            self._settle_failure(staged.job, outcome.failure or error)
        except SmtpError as error:
            if outcome.failure is not None:
                self._settle_failure(staged.job, outcome.failure)
                yield from self._connection_failed(session, None, None, error)
            else:
                yield from self._connection_failed(session, _InFlight(staged, outcome), None,
                                                   error)
            return
        else:
            if outcome.failure is not None:
                confused = SmtpProtocolError("the server accepted a message for a failed "
                                             "transaction", reply=result.reply)
                self._settle_failure(staged.job, confused)
                yield from self._connection_failed(session, None, None, confused)
                return
            self._settle(staged.job, result, None)
        if not session.alive:
            yield from self.core.drop()

    def _connection_failed(self, session: Session, in_flight: _InFlight | None,
                           following: _Staged | None, error: SmtpError) -> Flow[None]:
        """The connection broke: settle what was on it and drop it."""
        session.alive = False
        if in_flight is not None:
            unknown = error if isinstance(error, DeliveryUnknownError) else DeliveryUnknownError(
                f"the connection failed while the message was being sent ({error}); "
                "the server may or may not have accepted it")
            self._settle_failure(in_flight.staged.job, unknown)
        if following is not None:
            if isinstance(error, DeliveryUnknownError):
                error = ConnectionLostError(f"the connection failed before this message's data "
                                            f"was sent ({error.__cause__ or error})")
            self._settle_failure(following.job, error)
        yield from self.core.drop()

    def _settle(self, job: Job, result: SendResult | None, error: SmtpError | None) -> None:
        self.queue.finish(job)
        self.report(BulkResult(job.index, result, error, job.attempts))

    def _settle_failure(self, job: Job, error: SmtpError) -> None:
        if (is_transient(error) and job.attempts < self.options.max_attempts
                and isinstance(job.outgoing.message, REPLAYABLE)):
            self.queue.retry_later(job)
            self.retry_pending = self.core.connected
            return
        self._settle(job, None, error)


def _job(item: Job | _Staged) -> Job:
    return item.job if isinstance(item, _Staged) else item


def _frame_whole(prepared: PreparedMessage, check_eight_bit: bool, *, dot_stuff: bool) -> bytes:
    """The wire form of a small message (for DATA, end marker included), framed in one go."""
    try:
        content = b"".join(prepared.chunks)
    except Exception as error:
        raise MessageError(f"reading the message failed: {error}") from error
    if check_eight_bit and not content.isascii():
        raise MessageError("the message has 8-bit data and the server does not offer 8BITMIME")
    framer = DataFramer(dot_stuff=dot_stuff)
    return framer.frame(content) + framer.finish()


def is_transient(error: SmtpError) -> bool:
    """Whether trying again later may succeed."""
    if isinstance(error, DeliveryUnknownError | SmtpUsageError | SmtpSecurityError
                  | AuthenticationError | SmtpProtocolError):
        return False
    if isinstance(error, SmtpResponseError):
        return error.code is not None and 400 <= error.code < 500
    return isinstance(error, SmtpConnectionError | SmtpTimeoutError)

