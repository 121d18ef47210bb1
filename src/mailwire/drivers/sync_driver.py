"""The blocking driver: performs the requests of a client's flows on a ``SyncConnection``, for
any number of threads sharing the client.

One thread at a time holds the connection (``_hold``). A ``send`` puts its ticket in the pipeline
and waits until either the ticket is settled (someone else's run sent it) or the connection is
free, then drives the pipeline until its own ticket is settled and lets the next thread go on:
messages of several threads share the pipeline and their bytes never interleave. Other
operations (``noop``, ``quit``, ...) wait for the pipeline to finish its run, then have the
connection to themselves.

Interrupted (KeyboardInterrupt, or any exception that is not the server's), a driver leaves the
pipeline to the next thread when the request it was in can be performed again without loss (a
read, a wait) and someone is waiting; otherwise the pipeline is given up: what was in flight is
settled from what was written and answered, and the connection is closed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mailwire.conversation.bulk import BulkFeed
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.requests import (
    CheckIdle,
    Flow,
    Open,
    Poll,
    Read,
    Request,
    Sleep,
    StartTls,
    Write,
)
from mailwire.conversation.stepper import Stepper, resumable
from mailwire.conversation.tickets import Ticket
from mailwire.errors import SmtpError
from mailwire.results import BulkResult, SendResult
from mailwire.transport.sync_connection import SyncConnection

T = TypeVar("T")
IDLE_POLL = 0.01
"""How long a ``send_many`` waits when its messages are all on other connections."""


class SyncRunner:
    """Runs one client's flows on its connection; safe to share between threads."""

    def __init__(self, core: ClientCore, connection: SyncConnection) -> None:
        self.core = core
        self.connection = connection
        self._changed = threading.Condition()
        self._holder: int | None = None
        self._waiting = 0

    # -- operations ----------------------------------------------------------------------------

    def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` with the connection to itself, after the pipeline's run is over."""
        self._hold(lambda: False)
        try:
            self._finish_motor()
            return self._run_alone(flow)
        finally:
            self._let_go()

    def drop(self) -> None:
        """Close the connection without QUIT; a pipeline run under way is given up."""
        self._hold(lambda: False)
        try:
            self._give_up_motor()
            self._run_alone(self.core.drop())
        finally:
            self._let_go()

    def send(self, ticket: Ticket) -> SendResult:
        """Put ``ticket`` in the pipeline and return its result (or raise its error)."""
        ticket.watcher = self._wake
        self.core.direct.put(ticket)
        try:
            if self._hold(lambda: ticket.done):
                try:
                    self._drive(lambda: ticket.done)
                finally:
                    self._let_go()
        except BaseException:
            ticket.cancelled = True
            self.core.direct.withdraw(ticket)
            raise
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result

    def drain(self, feed: BulkFeed, results: deque[BulkResult]) -> Iterator[BulkResult]:
        """The results of ``feed``'s messages as they come, sent over this connection's
        pipeline together with whatever else goes through it."""
        self._hold(lambda: False)
        self.core.attach(feed)
        self._let_go()
        try:
            while True:
                while results:
                    yield results.popleft()
                if feed.finished:
                    return
                wait: float | None = None
                if self._hold(lambda: bool(results)):
                    try:
                        wait = self._drive(lambda: bool(results) or feed.finished)
                    finally:
                        self._let_go()
                if not results and not feed.finished:
                    self._pause(wait if wait is not None else IDLE_POLL,
                                lambda: bool(results))
        finally:
            feed.close()
            if self._try_hold():
                try:
                    self.core.detach(feed)
                    if not feed.finished and not self._waiting:
                        self._give_up_motor()
                finally:
                    self._let_go()

    def serve(self, feed: BulkFeed) -> None:
        """Send ``feed``'s messages over this runner's own connection until none is left (for a
        connection of its own among several), then QUIT."""
        self._hold(lambda: False)
        self.core.attach(feed)
        self._let_go()
        try:
            while not feed.finished:
                wait: float | None = None
                if self._hold(lambda: feed.finished):
                    try:
                        wait = self._drive(lambda: feed.finished)
                    finally:
                        self._let_go()
                if not feed.finished:
                    self._pause(wait if wait is not None else IDLE_POLL, lambda: feed.finished)
            self.run(self.core.quit())
        finally:
            self.connection.close()

    # -- holding the connection ----------------------------------------------------------------

    def _hold(self, done: Callable[[], bool]) -> bool:
        """Wait until the connection is free (True: it is now this thread's) or ``done()``."""
        me = threading.get_ident()
        with self._changed:
            self._waiting += 1
            try:
                while self._holder is not None and not done():
                    self._changed.wait()
                if done():
                    return False
                self._holder = me
                return True
            finally:
                self._waiting -= 1

    def _try_hold(self) -> bool:
        """Take the connection if it is free, without waiting (for clean-ups that may run
        while this very thread holds it, from a finalizer)."""
        with self._changed:
            if self._holder is not None:
                return False
            self._holder = threading.get_ident()
            return True

    def _let_go(self) -> None:
        with self._changed:
            self._holder = None
            self._changed.notify_all()

    def _wake(self, _ticket: Ticket) -> None:
        with self._changed:
            self._changed.notify_all()

    def _pause(self, seconds: float, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + seconds
        with self._changed:
            while not done() and (remaining := deadline - time.monotonic()) > 0:
                self._changed.wait(remaining)

    # -- driving -------------------------------------------------------------------------------

    def _drive(self, done: Callable[[], bool]) -> float | None:
        """Drive the pipeline until ``done()``; the seconds its last run asked to wait."""
        wait: float | None = None
        while not done():
            motor = self.core.start_motor()
            try:
                request = motor.next()
            except BaseException:
                self._give_up_motor()
                raise
            if request is None:
                wait = motor.value
                self.core.motor = None
                if wait is not None or self._idle(done):
                    return wait
                continue
            if type(request) is Read and done():
                # What the run settled before it turned to wait for the server goes to the
                # caller now, while the server works; the read stays pending for the next
                # round (or the next caller).
                return wait
            self._step(motor, request)
        return wait

    def _idle(self, done: Callable[[], bool]) -> bool:
        """The run ended and nothing is queued: nothing more can make ``done()`` come true."""
        return not len(self.core.direct) and not done()

    def _finish_motor(self) -> None:
        motor = self.core.motor
        while motor is not None and not motor.finished:
            request = motor.next()
            if request is None:
                break
            self._step(motor, request)
        self.core.motor = None

    def _step(self, motor: Stepper[Any], request: Request) -> None:
        try:
            result = perform(request, self.connection)
        except SmtpError as error:
            motor.failed(error)
        except BaseException:
            if not (resumable(request) and self._waiting):
                self._give_up_motor()
            raise
        else:
            motor.performed(result)

    def _give_up_motor(self) -> None:
        motor, self.core.motor = self.core.motor, None
        if motor is not None and not motor.finished:
            motor.close()
        if not self.core.connected:
            self.connection.close()

    def _run_alone(self, flow: Flow[T]) -> T:
        stepper = Stepper(flow)
        try:
            while (request := stepper.next()) is not None:
                try:
                    stepper.performed(perform(request, self.connection))
                except SmtpError as error:
                    stepper.failed(error)
        except BaseException:
            if not stepper.finished:
                stepper.close()
            if not self.core.connected:
                self.connection.close()
            raise
        if not self.core.connected:
            self.connection.close()
        return stepper.value  # type: ignore[return-value]


def perform(request: Request, connection: SyncConnection) -> Any:
    if isinstance(request, Write):
        return connection.send(request.data, request.phase, request.timeout)
    if isinstance(request, Read):
        return connection.receive(request.phase, request.timeout)
    if isinstance(request, Poll):
        return connection.poll()
    if isinstance(request, Open):
        return connection.open(request.endpoint, tls=request.tls, timeout=request.timeout)
    if isinstance(request, StartTls):
        return connection.start_tls(timeout=request.timeout)
    if isinstance(request, Sleep):
        return time.sleep(request.seconds)
    if isinstance(request, CheckIdle):
        return connection.is_quiet()
    return connection.close()
