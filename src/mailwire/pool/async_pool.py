"""``AsyncSmtpPool``: the asyncio counterpart of ``SmtpPool``, for the tasks of one event loop.

The same rules as ``SmtpPool``: up to N ``AsyncSmtpClient`` connections, each lent to one task
at a time; a task that finds all N busy waits up to ``wait_timeout`` seconds; connections idle
for ``idle_timeout`` seconds are QUIT by a task of the pool; ``await pool.close()`` QUITs every
connection. The pool belongs to the event loop that first uses it.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any, Self

from mailwire.async_client import AsyncSmtpClient
from mailwire.bulk_sync import Callback, Callbacks, Progress
from mailwire.conversation.bulk import DEFAULT_MAX_IN_FLIGHT, BulkOptions
from mailwire.errors import SmtpError, SmtpTimeoutError, SmtpUsageError
from mailwire.message import MessageInput
from mailwire.outgoing import Outgoing
from mailwire.pool.base import PoolBase
from mailwire.pool.ledger import Ledger
from mailwire.pool.spread import quit_quietly_async, spread_async
from mailwire.results import BulkResult, SendResult


class AsyncSmtpPool(PoolBase[AsyncSmtpClient]):
    """A pool of ``AsyncSmtpClient`` connections; the options are ``SmtpPool``'s."""

    _kind = AsyncSmtpClient

    def _start_generation(self) -> None:
        self._pid = os.getpid()
        self._condition = asyncio.Condition()
        self._ledger: Ledger[AsyncSmtpClient] = Ledger(self.max_connections, self.idle_timeout)
        self._reaper: asyncio.Task[None] | None = None
        self._generation = object()

    def _current(self) -> asyncio.Condition:
        if os.getpid() != self._pid:
            self._forget_parent()
        return self._condition

    # -- borrowing -------------------------------------------------------------------------------

    @asynccontextmanager
    async def borrow(self) -> AsyncIterator[AsyncSmtpClient]:
        """``async with pool.borrow() as client:`` a client for this task alone; closed rather
        than reused if the block is left by anything but a mailwire error (cancellation...)."""
        client, generation = await self._acquire(wait=True)
        assert client is not None
        try:
            yield client
        except SmtpError:
            await self._release(client, generation)
            raise
        except BaseException:
            await self._release(client, generation, broken=True)
            raise
        await self._release(client, generation)

    async def _acquire(self, *, wait: bool) -> tuple[AsyncSmtpClient | None, object]:
        condition = self._current()
        deadline = time.monotonic() + self.wait_timeout
        stale: list[AsyncSmtpClient] = []
        try:
            async with condition:
                generation = self._generation
                while True:
                    if self._ledger.closed:
                        raise SmtpUsageError(f"the pool for {self._description} is closed")
                    now = time.monotonic()
                    stale += self._ledger.expire(now)
                    client = self._ledger.take()
                    if client is not None or self._ledger.reserve():
                        break
                    remaining = deadline - now
                    if not wait:
                        return None, generation
                    if remaining <= 0:
                        raise SmtpTimeoutError(
                            f"waiting for a free connection to {self._description} "
                            f"(all {self.max_connections} in use)", self.wait_timeout)
                    with suppress(TimeoutError):
                        await asyncio.wait_for(condition.wait(), remaining)
        finally:
            for old in stale:
                await old.close()
        if client is None:
            try:
                client = self._make_client()
            except BaseException:
                async with condition:
                    self._ledger.discard()
                    condition.notify()
                raise
        return client, generation

    async def _release(self, client: AsyncSmtpClient, generation: object, *,
                       broken: bool = False) -> None:
        condition = self._current()
        if generation is not self._generation:
            return
        if broken:
            await client.close()
        async with condition:
            closed = self._ledger.closed
            if broken or closed:
                self._ledger.discard()
            else:
                self._ledger.give_back(client, time.monotonic())
                self._start_reaper()
            condition.notify()
        if closed and not broken:
            await quit_quietly_async(client)

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(_reap(weakref.ref(self)))

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, message: MessageInput | Outgoing, **options: Any) -> SendResult:
        """Send one message on a pooled connection; ``options`` are ``SmtpClient.send``'s."""
        async with self.borrow() as client:
            return await client.send(message, **options)

    async def send_mail(self, sender: str, recipients: str | Iterable[str], subject: str,
                        body: str, *, html: str | None = None) -> SendResult:
        async with self.borrow() as client:
            return await client.send_mail(sender, recipients, subject, body, html=html)

    def send_many(
        self,
        messages: Iterable[MessageInput | Outgoing],
        *,
        connections: int = 1,
        max_attempts: int = 4,
        retry_delay: float = 0.5,
        messages_per_connection: int | None = None,
        rate_limit: float | None = None,
        progress: Progress | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        on_sent: Callback | None = None,
        on_failed: Callback | None = None,
    ) -> AsyncIterator[BulkResult]:
        """``async for result in pool.send_many(...)``; see ``SmtpPool.send_many``."""
        BulkOptions(connections, max_attempts, retry_delay, rate_limit=rate_limit,
                    messages_per_connection=messages_per_connection,
                    max_in_flight=max_in_flight)  # the client's checks, before borrowing
        options: dict[str, Any] = {"max_attempts": max_attempts, "retry_delay": retry_delay,
                                   "messages_per_connection": messages_per_connection,
                                   "max_in_flight": max_in_flight}
        return self._send_many(messages, connections, rate_limit,
                               Callbacks(progress, on_sent, on_failed), options)

    async def _send_many(self, messages: Iterable[MessageInput | Outgoing], connections: int,
                         rate_limit: float | None, callbacks: Callbacks,
                         options: dict[str, Any]) -> AsyncIterator[BulkResult]:
        async with AsyncExitStack() as borrowed:
            clients = [await borrowed.enter_async_context(self.borrow())]
            for _ in range(connections - 1):
                client, generation = await self._acquire(wait=False)
                if client is None:
                    break
                await borrowed.enter_async_context(_lent(self, client, generation))
                clients.append(client)
            async for outcome in spread_async(clients, messages, rate_limit, callbacks, options):
                yield outcome

    # -- state and closing -----------------------------------------------------------------------

    @property
    def idle(self) -> int:
        return self._ledger.idle

    @property
    def in_use(self) -> int:
        return self._ledger.in_use

    async def close(self) -> None:
        """QUIT every idle connection now and every borrowed one when it is given back."""
        condition = self._current()
        async with condition:
            drained = self._ledger.close()
            condition.notify_all()
        if self._reaper is not None:
            self._reaper.cancel()
        for client in drained:
            await quit_quietly_async(client)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


@asynccontextmanager
async def _lent(pool: AsyncSmtpPool, client: AsyncSmtpClient,
                generation: object) -> AsyncIterator[None]:
    try:
        yield
    except SmtpError:
        await pool._release(client, generation)
        raise
    except BaseException:
        await pool._release(client, generation, broken=True)
        raise
    await pool._release(client, generation)


async def _reap(reference: weakref.ref[AsyncSmtpPool]) -> None:
    while True:
        pool = reference()
        if pool is None:
            return
        async with pool._current():
            expiry = pool._ledger.next_expiry()
            if expiry is None or pool._ledger.closed:
                return
            wait = expiry - time.monotonic()
            stale = pool._ledger.expire(time.monotonic()) if wait <= 0 else []
        del pool
        if wait > 0:
            await asyncio.sleep(wait)
        for client in stale:
            await quit_quietly_async(client)
