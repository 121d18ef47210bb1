"""``send_many`` for the asyncio client: one connection inline, several as tasks."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sized

from mailwire.bulk_sync import Progress
from mailwire.conversation.bulk import BulkOptions, BulkResult, Outgoing, WorkQueue, worker
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.session import SessionSettings
from mailwire.drivers import async_driver
from mailwire.message import MessageInput
from mailwire.transport.async_connection import AsyncConnection


async def send_many(
    core: ClientCore,
    connection: AsyncConnection,
    settings: Callable[[], SessionSettings],
    messages: Iterable[MessageInput | Outgoing],
    options: BulkOptions,
    progress: Progress | None,
) -> AsyncIterator[BulkResult]:
    """Results in the order messages complete (input order on one connection)."""
    total = len(messages) if isinstance(messages, Sized) else None
    work = WorkQueue(messages, options)
    if options.connections == 1:
        results: deque[BulkResult] = deque()
        flow = worker(core, work, results.append, options, quit_at_end=False)
        outcomes = async_driver.drain(flow, connection, results)
    else:
        outcomes = _concurrent(work, settings, options)
    done = 0
    async for outcome in outcomes:
        done += 1
        if progress is not None:
            progress(done, total)
        yield outcome


async def _concurrent(work: WorkQueue, settings: Callable[[], SessionSettings],
                      options: BulkOptions) -> AsyncIterator[BulkResult]:
    finished: asyncio.Queue[BulkResult | None] = asyncio.Queue()

    async def run_connection() -> None:
        connection = AsyncConnection()
        try:
            flow = worker(ClientCore(settings), work, finished.put_nowait, options)
            await async_driver.run(flow, connection)
        finally:
            connection.close()
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
        for task in tasks:
            task.cancel()
