"""``send_many`` for the asyncio client: one connection inline, several as tasks."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sized

from mailwire.bulk_sync import Callbacks
from mailwire.conversation.bulk import BulkFeed, BulkOptions
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.session import SessionSettings
from mailwire.drivers.async_driver import AsyncRunner
from mailwire.message import MessageInput
from mailwire.outgoing import Outgoing
from mailwire.results import BulkResult
from mailwire.transport.async_connection import AsyncConnection


def send_many(
    runner: AsyncRunner,
    settings: Callable[[], SessionSettings],
    messages: Iterable[MessageInput | Outgoing],
    options: BulkOptions,
    callbacks: Callbacks,
) -> AsyncIterator[BulkResult]:
    """Results in the order messages complete (input order on one connection)."""
    outcomes: AsyncIterator[BulkResult]
    if options.connections == 1:
        results: deque[BulkResult] = deque()
        outcomes = runner.drain(BulkFeed(messages, options, results.append), results)
    else:
        outcomes = _concurrent(messages, settings, options)
    return reported(outcomes, messages, callbacks)


async def reported(outcomes: AsyncIterator[BulkResult], messages: Iterable[object],
                   callbacks: Callbacks) -> AsyncIterator[BulkResult]:
    """The results, ``callbacks`` called for each before it is handed out."""
    total = len(messages) if isinstance(messages, Sized) else None
    done = 0
    async for outcome in outcomes:
        done += 1
        callbacks.report(done, total, outcome)
        yield outcome


async def from_thread(results: Iterator[BulkResult]) -> AsyncIterator[BulkResult]:
    """A blocking iterator of results (files written to a pickup directory), each step on a
    worker thread so that the event loop goes on."""
    while (result := await asyncio.to_thread(next, results, None)) is not None:
        yield result


async def _concurrent(messages: Iterable[MessageInput | Outgoing],
                      settings: Callable[[], SessionSettings],
                      options: BulkOptions) -> AsyncIterator[BulkResult]:
    finished: asyncio.Queue[BulkResult | None] = asyncio.Queue()
    feed = BulkFeed(messages, options, finished.put_nowait)

    async def run_connection() -> None:
        core = ClientCore(settings, max_in_flight=options.max_in_flight)
        try:
            await AsyncRunner(core, AsyncConnection()).serve(feed)
        finally:
            finished.put_nowait(None)

    tasks = [asyncio.create_task(run_connection()) for _ in range(options.connections)]
    running = len(tasks)
    try:
        while running:
            item = await finished.get()
            if item is None:
                running -= 1
            else:
                yield item
        for task in tasks:
            task.result()
    finally:
        feed.close()
        for task in tasks:
            task.cancel()
