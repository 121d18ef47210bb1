"""Messages waiting for a connection (``Ticket``) and the queues they come from (feeds).

A ``Ticket`` is one message handed to a client: ``send`` makes one and waits for it, ``send_many``
makes one per input message. A pipeline takes tickets from its feeds when it has room, and hands
each back to its feed with an outcome; the feed decides whether to try again or to settle it.

- ``DirectFeed``: the tickets of ``send`` calls, from any number of threads or tasks, in the
  order they came. A message that met a connection the server had closed in the meantime, before
  any of its data went out, is tried once more on a new connection.
- ``BulkFeed`` (``bulk.py``): the messages of one ``send_many``, with its retry rules.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from email.message import Message
from typing import Protocol

from mailwire.errors import (
    AuthenticationError,
    ConnectionLostError,
    DeliveryUnknownError,
    SmtpConnectionError,
    SmtpError,
    SmtpProtocolError,
    SmtpResponseError,
    SmtpSecurityError,
    SmtpTimeoutError,
    SmtpUsageError,
)
from mailwire.message import PreparedMessage
from mailwire.message.dkim_signer import DkimSigner
from mailwire.outgoing import Outgoing
from mailwire.protocol.replies import SERVICE_CLOSING
from mailwire.results import SendResult

REPLAYABLE = (Message, bytes, bytearray, memoryview, os.PathLike)


class Ticket:
    """One message on its way: what to send, and its outcome once settled."""

    __slots__ = ("_cancelled", "attempts", "default_sender", "dkim_signer", "done", "error",
                 "feed", "index", "outgoing", "prepared", "result", "reused", "watcher")

    def __init__(self, outgoing: Outgoing, feed: Feed, *, index: int = 0,
                 prepared: PreparedMessage | None = None,
                 default_sender: str | None = None,
                 dkim_signer: DkimSigner | None = None) -> None:
        self.outgoing = outgoing
        self.feed = feed
        self.index = index
        self.default_sender = default_sender
        """The envelope sender when neither the caller nor the message names one."""
        self.dkim_signer = dkim_signer
        """Signs the message as it is sent, or None."""
        self.prepared = prepared
        """Made ready by the caller for its first try; later tries prepare the message again."""
        self.attempts = 0
        self.reused = False
        """The connection of the latest try was open before the try began (not opened for it)."""
        self.result: SendResult | None = None
        self.error: SmtpError | None = None
        self.done = False
        self._cancelled = False
        self.watcher: Callable[[Ticket], None] | None = None

    @property
    def cancelled(self) -> bool:
        """Its caller gave up on it (or its feed was closed): none of it is to be sent now."""
        return self._cancelled or self.feed.closed

    @cancelled.setter
    def cancelled(self, value: bool) -> None:
        self._cancelled = value

    def settle(self, outcome: SendResult | SmtpError) -> None:
        if isinstance(outcome, SendResult):
            self.result = outcome
        else:
            self.error = outcome
        self.done = True
        if self.watcher is not None:
            self.watcher(self)

    @property
    def replayable(self) -> bool:
        """The message can be read again for another try."""
        return isinstance(self.outgoing.message, REPLAYABLE)

    def __repr__(self) -> str:
        state = "done" if self.done else "cancelled" if self.cancelled else "pending"
        return f"<Ticket #{self.index} {state} attempts={self.attempts}>"


class Feed(Protocol):
    """Where a pipeline takes messages from, and gives them back to."""

    connection_limit: int | None
    """At most this many messages per connection (a new connection after that), or None."""
    closed: bool
    """Its caller went away: nothing more is taken from it."""
    max_in_flight: int
    """At most this many messages written and not yet answered, on one connection."""

    def take(self) -> Ticket | float | None:
        """A ticket; or seconds until one may be ready; or None when there is none for now."""

    def put_back(self, ticket: Ticket) -> None:
        """``ticket`` was taken but none of it was written: it is first in line again."""

    def finish(self, ticket: Ticket, outcome: SendResult | SmtpError) -> bool:
        """Settle ``ticket`` or queue it for another try; True asks for a new connection."""

    def connect_failed(self) -> None:
        """Opening a connection failed (its tickets were finished with the error)."""

    def connected(self) -> None:
        """A connection was opened and is ready."""


class DirectFeed:
    """The tickets of ``send`` calls; safe to use from several threads."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self.connection_limit: int | None = None
        self.closed = False
        self._queue: deque[Ticket] = deque()
        self._lock = threading.Lock()

    def put(self, ticket: Ticket) -> None:
        with self._lock:
            self._queue.append(ticket)

    def withdraw(self, ticket: Ticket) -> bool:
        """Take back a ticket that is still waiting; False when it was already taken."""
        with self._lock:
            try:
                self._queue.remove(ticket)
            except ValueError:
                return False
            return True

    def __len__(self) -> int:
        return len(self._queue)

    def take(self) -> Ticket | None:
        with self._lock:
            while self._queue:
                ticket = self._queue.popleft()
                if not ticket.cancelled:
                    ticket.attempts += 1
                    return ticket
        return None

    def put_back(self, ticket: Ticket) -> None:
        ticket.attempts -= 1
        with self._lock:
            self._queue.appendleft(ticket)

    def finish(self, ticket: Ticket, outcome: SendResult | SmtpError) -> bool:
        if (isinstance(outcome, SmtpError) and ticket.reused and ticket.attempts < 2
                and not ticket.cancelled and ticket.replayable and _found_closed(outcome)):
            ticket.prepared = None
            with self._lock:
                self._queue.appendleft(ticket)
            return False
        ticket.settle(outcome)
        return False

    def connect_failed(self) -> None:
        return None

    def connected(self) -> None:
        return None


def _found_closed(error: SmtpError) -> bool:
    """The server had closed (or was closing) the connection before the message's data."""
    if isinstance(error, DeliveryUnknownError):
        return False
    if isinstance(error, ConnectionLostError):
        return True
    return isinstance(error, SmtpResponseError) and error.code == SERVICE_CLOSING


def is_transient(error: SmtpError) -> bool:
    """Whether trying again later may succeed (and cannot deliver the message twice)."""
    if isinstance(error, DeliveryUnknownError | SmtpUsageError | SmtpSecurityError
                  | AuthenticationError | SmtpProtocolError):
        return False
    if isinstance(error, SmtpResponseError):
        return error.code is not None and 400 <= error.code < 500
    return isinstance(error, SmtpConnectionError | SmtpTimeoutError)
