"""The asyncio driver: performs the requests of a client's flows on an ``AsyncConnection``, for
any number of tasks sharing the client.

It holds to the rules of the blocking driver (``sync_driver``): one task at a time holds the
connection; a ``send`` waits until its ticket is settled or the connection is free, then drives
the pipeline until its own ticket is settled and lets the next task go on. A task cancelled while
it drives leaves the pipeline to a waiting task when the request it was in can go on without loss
(a read, a wait, a write whose bytes the transport already has); otherwise the pipeline is given
up, what was in flight settled, and the connection closed. A cancelled ``send`` whose message has
not been written is simply taken out of the queue.

Writes and reads of bytes already received are done without awaiting: on a fast connection most
steps never yield to the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
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
from mailwire.transport.async_connection import AsyncConnection

T = TypeVar("T")
IDLE_POLL = 0.01


class AsyncRunner:
    """Runs one client's flows on its connection; safe to share between tasks of one loop."""

    def __init__(self, core: ClientCore, connection: AsyncConnection) -> None:
        self.core = core
        self.connection = connection
        self._holder: asyncio.Task[Any] | None = None
        self._waiting = 0
        self._change: asyncio.Future[None] | None = None

    # -- operations ----------------------------------------------------------------------------

    async def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` with the connection to itself, after the pipeline's run is over."""
        await self._hold(lambda: False)
        try:
            await self._finish_motor()
            return await self._run_alone(flow)
        finally:
            self._let_go()

    async def drop(self) -> None:
        await self._hold(lambda: False)
        try:
            self._give_up_motor()
            await self._run_alone(self.core.drop())
        finally:
            self._let_go()

    async def send(self, ticket: Ticket) -> SendResult:
        ticket.watcher = self._wake
        self.core.direct.put(ticket)
        try:
            if await self._hold(lambda: ticket.done):
                try:
                    await self._drive(lambda: ticket.done)
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

    async def drain(self, feed: BulkFeed,
                    results: deque[BulkResult]) -> AsyncIterator[BulkResult]:
        await self._hold(lambda: False)
        self.core.attach(feed)
        self._let_go()
        try:
            while True:
                while results:
                    yield results.popleft()
                if feed.finished:
                    return
                wait: float | None = None
                if await self._hold(lambda: bool(results)):
                    try:
                        wait = await self._drive(lambda: bool(results) or feed.finished)
                    finally:
                        self._let_go()
                if not results and not feed.finished:
                    await self._pause(wait if wait is not None else IDLE_POLL,
                                      lambda: bool(results))
        finally:
            feed.close()
            if self._holder is None:
                self._holder = asyncio.current_task()
                try:
                    self.core.detach(feed)
                    if not feed.finished and not self._waiting:
                        self._give_up_motor()
                finally:
                    self._let_go()

    async def serve(self, feed: BulkFeed) -> None:
        """Send ``feed``'s messages over this runner's own connection until none is left (for a
        connection of its own among several), then QUIT."""
        await self._hold(lambda: False)
        self.core.attach(feed)
        self._let_go()
        try:
            while not feed.finished:
                wait: float | None = None
                if await self._hold(lambda: feed.finished):
                    try:
                        wait = await self._drive(lambda: feed.finished)
                    finally:
                        self._let_go()
                if not feed.finished:
                    await self._pause(wait if wait is not None else IDLE_POLL,
                                      lambda: feed.finished)
            await self.run(self.core.quit())
        finally:
            self.connection.close()

    # -- holding the connection ----------------------------------------------------------------

    async def _hold(self, done: Callable[[], bool]) -> bool:
        self._waiting += 1
        try:
            while self._holder is not None and not done():
                await self._changed()
            if done():
                return False
            self._holder = asyncio.current_task()
            return True
        finally:
            self._waiting -= 1

    def _let_go(self) -> None:
        self._holder = None
        self._notify()

    def _wake(self, _ticket: Ticket) -> None:
        self._notify()

    def _notify(self) -> None:
        change, self._change = self._change, None
        if change is not None and not change.done():
            change.set_result(None)

    async def _changed(self, timeout: float | None = None) -> None:
        """Wait for the next change (a ticket settled, the connection let go). Waiting through
        ``asyncio.wait`` never cancels the shared future when this waiter is cancelled."""
        if self._change is None:
            self._change = asyncio.get_running_loop().create_future()
        await asyncio.wait({self._change}, timeout=timeout)

    async def _pause(self, seconds: float, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + seconds
        while not done() and (remaining := deadline - time.monotonic()) > 0:
            await self._changed(remaining)

    # -- driving -------------------------------------------------------------------------------

    async def _drive(self, done: Callable[[], bool]) -> float | None:
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
                if wait is not None or (not len(self.core.direct) and not done()):
                    return wait
                continue
            if type(request) is Read and done():
                # What the run settled before it turned to wait for the server goes to the
                # caller now, while the server works; the read stays pending for the next
                # round (or the next caller).
                return wait
            await self._step(motor, request)
        return wait

    async def _finish_motor(self) -> None:
        motor = self.core.motor
        while motor is not None and not motor.finished:
            request = motor.next()
            if request is None:
                break
            await self._step(motor, request)
        self.core.motor = None

    async def _step(self, motor: Stepper[Any], request: Request) -> None:
        connection = self.connection
        written = False
        try:
            if type(request) is Write:
                connection.write_now(request.data, request.phase, request.timeout)
                written = True
                if connection.must_drain:
                    await connection.drain(request.phase, request.timeout)
                result: Any = None
            elif type(request) is Read and (data := connection.read_now()) is not None:
                result = data
            else:
                result = await perform(request, connection)
        except SmtpError as error:
            motor.failed(error)
        except BaseException:
            if resumable(request, written=written) and self._waiting:
                if written:
                    motor.performed(None)
            else:
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

    async def _run_alone(self, flow: Flow[T]) -> T:
        stepper = Stepper(flow)
        try:
            while (request := stepper.next()) is not None:
                try:
                    stepper.performed(await perform(request, self.connection))
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


async def perform(request: Request, connection: AsyncConnection) -> Any:
    if isinstance(request, Write):
        return await connection.send(request.data, request.phase, request.timeout)
    if isinstance(request, Read):
        return await connection.receive(request.phase, request.timeout)
    if isinstance(request, Poll):
        return connection.read_now() or b""
    if isinstance(request, Open):
        return await connection.open(request.endpoint, tls=request.tls, timeout=request.timeout)
    if isinstance(request, StartTls):
        return await connection.start_tls(timeout=request.timeout)
    if isinstance(request, Sleep):
        return await asyncio.sleep(request.seconds)
    if isinstance(request, CheckIdle):
        return connection.is_quiet()
    return connection.close()
