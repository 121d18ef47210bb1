"""``send_many`` for the asyncio client: one connection inline, several as tasks."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sized

from mailwire.bulk_sync import Progress
from mailwire.conversation.bulk import BulkFeed, BulkOptions
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.session import SessionSettings
from mailwire.drivers.async_driver import AsyncRunner
from mailwire.message import MessageInput
from mailwire.outgoing import Outgoing
from mailwire.results import BulkResult
from mailwire.transport.async_connection import AsyncConnection


async def send_many(
    runner: AsyncRunner,
    settings: Callable[[], SessionSettings],
    messages: Iterable[MessageInput | Outgoing],
    options: BulkOptions,
    progress: Progress | None,
) -> AsyncIterator[BulkResult]:
    """Results in the order messages complete (input order on one connection)."""
    total = len(messages) if isinstance(messages, Sized) else None
    outcomes: AsyncIterator[BulkResult]
    if options.connections == 1:
        results: deque[BulkResult] = deque()
        outcomes = runner.drain(BulkFeed(messages, options, results.append), results)
    else:
        outcomes = _concurrent(messages, settings, options)
    done = 0
    async for outcome in outcomes:
        done += 1
        if progress is not None:
            progress(done, total)
        yield outcome


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
