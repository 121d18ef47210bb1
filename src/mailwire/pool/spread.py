"""Sending one stream of messages over several borrowed clients at once.

Each client pipelines on its own connection (``send_many(connections=1)``) and pulls its next
message from one shared source, so a fast connection takes more of the work. Results are
renumbered to the message's position in the caller's input. If the caller stops reading, no
new message is handed out; the messages already started finish before the clients go back.

A connection on which a message failed goes back to the pool as it is: the connection's engine
starts the next transaction with RSET after a failed one, so the next user starts clean.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sized
from dataclasses import replace
from typing import Any, TypeAlias

from mailwire.async_client import AsyncSmtpClient
from mailwire.bulk_sync import Callbacks
from mailwire.client import SmtpClient
from mailwire.errors import SmtpError
from mailwire.message import MessageInput
from mailwire.outgoing import Outgoing
from mailwire.results import BulkResult

Item: TypeAlias = "MessageInput | Outgoing"


class SharedSource:
    """The caller's messages, handed out one at a time with their input position."""

    def __init__(self, messages: Iterable[Item]) -> None:
        self._items = enumerate(messages)
        self._lock = threading.Lock()
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    def share(self, positions: list[int]) -> Iterator[Item]:
        """One client's share; ``positions`` records the input position of each item taken."""
        while True:
            with self._lock:
                if self._stopped:
                    return
                taken = next(self._items, None)
            if taken is None:
                return
            positions.append(taken[0])
            yield taken[1]


def _per_connection(rate_limit: float | None, clients: int) -> float | None:
    return None if rate_limit is None else rate_limit / clients


def _total(messages: Iterable[Item]) -> int | None:
    return len(messages) if isinstance(messages, Sized) else None


_DONE = object()


def quit_quietly(client: SmtpClient) -> None:
    """QUIT, or close if the server is already gone; a failed goodbye is nobody's problem."""
    try:
        client.quit()
    except SmtpError:
        client.close()


async def quit_quietly_async(client: AsyncSmtpClient) -> None:
    try:
        await client.quit()
    except SmtpError:
        await client.close()


def spread(clients: list[SmtpClient], messages: Iterable[Item], rate_limit: float | None,
           callbacks: Callbacks, options: dict[str, Any]) -> Iterator[BulkResult]:
    """Results from every client's ``send_many`` as they complete."""
    total = _total(messages)
    rate = _per_connection(rate_limit, len(clients))
    if len(clients) == 1:
        outcomes = clients[0].send_many(messages, rate_limit=rate, **options)
        for done, outcome in enumerate(outcomes, 1):
            callbacks.report(done, total, outcome)
            yield outcome
        return
    source = SharedSource(messages)
    finished: queue.SimpleQueue[object] = queue.SimpleQueue()
    failures: list[BaseException] = []

    def run(client: SmtpClient) -> None:
        positions: list[int] = []
        try:
            for outcome in client.send_many(source.share(positions), rate_limit=rate,
                                            **options):
                finished.put(replace(outcome, index=positions[outcome.index]))
        except BaseException as failure:
            failures.append(failure)
        finally:
            finished.put(_DONE)

    threads = [threading.Thread(target=run, args=(client,), daemon=True,
                                name=f"mailwire-pool-send-{number}")
               for number, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    running = len(threads)
    done = 0
    try:
        while running:
            item = finished.get()
            if item is _DONE:
                running -= 1
                continue
            assert isinstance(item, BulkResult)
            done += 1
            callbacks.report(done, total, item)
            yield item
    finally:
        source.stop()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]


async def spread_async(clients: list[AsyncSmtpClient], messages: Iterable[Item],
                       rate_limit: float | None, callbacks: Callbacks,
                       options: dict[str, Any]) -> AsyncIterator[BulkResult]:
    """The asyncio counterpart of ``spread``: one task per client on the running loop."""
    total = _total(messages)
    rate = _per_connection(rate_limit, len(clients))
    source = SharedSource(messages)
    finished: asyncio.Queue[object] = asyncio.Queue()
    failures: list[BaseException] = []

    async def run(client: AsyncSmtpClient) -> None:
        positions: list[int] = []
        try:
            async for outcome in client.send_many(source.share(positions), rate_limit=rate,
                                                  **options):
                finished.put_nowait(replace(outcome, index=positions[outcome.index]))
        except Exception as failure:
            failures.append(failure)
        finally:
            finished.put_nowait(_DONE)

    tasks = [asyncio.ensure_future(run(client)) for client in clients]
    running = len(tasks)
    done = 0
    try:
        while running:
            item = await finished.get()
            if item is _DONE:
                running -= 1
                continue
            assert isinstance(item, BulkResult)
            done += 1
            callbacks.report(done, total, item)
            yield item
    finally:
        source.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
    if failures:
        raise failures[0]
