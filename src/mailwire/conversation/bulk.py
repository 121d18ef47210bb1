"""The messages of one ``send_many``: a feed that any number of connections take from.

Messages come from any iterable, taken one at a time (never materialized). What is promised:
- A message is reported sent only after the server's 2xx for its data.
- A transient failure before that point (a 4xx reply, 421, a dropped connection, a timeout) is
  retried on a fresh connection after a growing delay, up to ``max_attempts`` attempts; then its
  last error is reported. Permanent failures (5xx, bad input) are reported at once.
- A connection lost after the end of a message's data is reported as ``DeliveryUnknownError``
  and never retried: at most once, not at least once.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from mailwire.conversation.tickets import Ticket, is_transient
from mailwire.errors import SmtpError, SmtpUsageError
from mailwire.message import MessageInput
from mailwire.message.dkim_signer import DkimSigner
from mailwire.outgoing import Outgoing
from mailwire.results import BulkResult, SendResult

DEFAULT_MAX_IN_FLIGHT = 32


@dataclass(frozen=True, slots=True)
class BulkOptions:
    connections: int = 1
    max_attempts: int = 4
    retry_delay: float = 0.5
    max_retry_delay: float = 30.0
    messages_per_connection: int | None = None
    rate_limit: float | None = None
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    default_sender: str | None = None
    dkim_signer: DkimSigner | None = None

    def __post_init__(self) -> None:
        if self.connections < 1 or self.max_attempts < 1:
            raise SmtpUsageError("connections and max_attempts must be at least 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise SmtpUsageError("rate_limit must be positive (messages per second)")
        if self.max_in_flight < 1:
            raise SmtpUsageError("max_in_flight must be at least 1")
        if self.messages_per_connection is not None and self.messages_per_connection < 1:
            raise SmtpUsageError("messages_per_connection must be at least 1")


Report = Callable[[BulkResult], None]


class BulkFeed:
    """Hands out the messages of one ``send_many`` to the pipelines of every connection, retries
    transient failures with back-off, and reports each outcome once; safe to share between
    threads."""

    def __init__(self, messages: Iterable[MessageInput | Outgoing], options: BulkOptions,
                 report: Report, *,
                 numbered: Iterable[tuple[int, MessageInput | Outgoing]] | None = None) -> None:
        """Messages from ``messages`` in order, or from ``numbered`` (input position, message)
        pairs when a share of the input is handed over from elsewhere."""
        self._source: Iterator[tuple[int, MessageInput | Outgoing]] = (
            iter(numbered) if numbered is not None else enumerate(messages))
        self._options = options
        self._report = report
        self._lock = threading.Lock()
        self._retries: list[tuple[float, int, Ticket]] = []
        self._returned: list[Ticket] = []
        self._exhausted = False
        self._outstanding = 0
        self._handed = 0
        self._next_slot = 0.0
        self._failed_connects = 0
        self._not_before = 0.0
        self.connection_limit = options.messages_per_connection
        self.max_in_flight = options.max_in_flight
        self.closed = False

    @property
    def finished(self) -> bool:
        """Every message was taken and settled; or the feed was closed and nothing it handed out
        is still on a connection. (Read without the lock: it is asked at every step, and the lock
        would not make the answer any more current.)"""
        return ((self._exhausted and self._outstanding == 0)
                or (self.closed and self._handed == 0))

    def close(self) -> None:
        """The caller stopped reading results: hand out nothing more."""
        self.closed = True

    def take(self) -> Ticket | float | None:
        if self.closed:
            return None
        with self._lock:
            now = time.monotonic()
            wait = max(self._rate_wait(now), self._not_before - now)
            if wait > 0:
                return wait
            if self._returned:
                return self._hand_out(self._returned.pop(), now)
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
                    ticket = Ticket(outgoing, self, index=index,
                                    default_sender=self._options.default_sender,
                                    dkim_signer=self._options.dkim_signer)
                    return self._hand_out(ticket, now)
            if self._retries:
                return max(self._retries[0][0] - now, 0.001)
            return None

    def put_back(self, ticket: Ticket) -> None:
        with self._lock:
            ticket.attempts -= 1
            self._handed -= 1
            self._returned.append(ticket)

    def finish(self, ticket: Ticket, outcome: SendResult | SmtpError) -> bool:
        if (isinstance(outcome, SmtpError) and is_transient(outcome)
                and ticket.attempts < self._options.max_attempts and ticket.replayable):
            delay = self.delay(ticket.attempts)
            ticket.prepared = None
            with self._lock:
                self._handed -= 1
                heapq.heappush(self._retries, (time.monotonic() + delay, ticket.index, ticket))
            return True
        with self._lock:
            self._handed -= 1
            self._outstanding -= 1
        result = outcome if isinstance(outcome, SendResult) else None
        error = outcome if isinstance(outcome, SmtpError) else None
        ticket.settle(outcome)
        self._report(BulkResult(ticket.index, result, error, ticket.attempts))
        return False

    def connect_failed(self) -> None:
        with self._lock:
            self._failed_connects += 1
            self._not_before = time.monotonic() + self.delay(self._failed_connects)

    def connected(self) -> None:
        with self._lock:
            self._failed_connects = 0
            self._not_before = 0.0

    def delay(self, attempts: int) -> float:
        """The back-off after ``attempts`` failures: ``retry_delay``, doubled each time."""
        delay: float = self._options.retry_delay * 2 ** (attempts - 1)
        return min(delay, self._options.max_retry_delay)

    def _hand_out(self, ticket: Ticket, now: float) -> Ticket:
        ticket.attempts += 1
        self._handed += 1
        if self._options.rate_limit:
            self._next_slot = max(self._next_slot, now) + 1.0 / self._options.rate_limit
        return ticket

    def _rate_wait(self, now: float) -> float:
        if not self._options.rate_limit or self._next_slot <= now:
            return 0.0
        return self._next_slot - now
