"""``send_many`` for the blocking client: one connection inline, several on threads."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized

from mailwire.bulk_processes import send_many_in_processes
from mailwire.conversation.bulk import BulkOptions, BulkResult, Outgoing, WorkQueue, worker
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.session import SessionSettings
from mailwire.drivers import sync_driver
from mailwire.message import MessageInput
from mailwire.transport.sync_connection import SyncConnection

Progress = Callable[[int, int | None], None]
"""``progress(done, total)``: called after each message; ``total`` is None for iterators."""


def send_many(
    core: ClientCore,
    connection: SyncConnection,
    settings: Callable[[], SessionSettings],
    messages: Iterable[MessageInput | Outgoing],
    options: BulkOptions,
    progress: Progress | None,
    processes: int = 1,
) -> Iterator[BulkResult]:
    """Results in the order messages complete (input order on one connection)."""
    total = len(messages) if isinstance(messages, Sized) else None
    outcomes: Iterator[BulkResult]
    if processes > 1:
        outcomes = send_many_in_processes(messages, settings, options,
                                          min(processes, options.connections))
    elif options.connections == 1:
        results: deque[BulkResult] = deque()
        flow = worker(core, WorkQueue(messages, options), results.append, options,
                      quit_at_end=False)
        outcomes = sync_driver.drain(flow, connection, results)
    else:
        outcomes = _threaded(WorkQueue(messages, options), settings, options)
    for done, outcome in enumerate(outcomes, 1):
        if progress is not None:
            progress(done, total)
        yield outcome


_FINISHED = object()


def _threaded(work: WorkQueue, settings: Callable[[], SessionSettings],
              options: BulkOptions) -> Iterator[BulkResult]:
    finished: queue.SimpleQueue[object] = queue.SimpleQueue()
    failures: list[BaseException] = []

    def run_connection() -> None:
        connection = SyncConnection()
        try:
            sync_driver.run(worker(ClientCore(settings), work, finished.put, options), connection)
        except BaseException as failure:
            failures.append(failure)
        finally:
            connection.close()
            finished.put(_FINISHED)

    threads = [threading.Thread(target=run_connection, name=f"mailwire-send-{number}",
                                daemon=True) for number in range(options.connections)]
    for thread in threads:
        thread.start()
    running = len(threads)
    while running:
        item = finished.get()
        if item is _FINISHED:
            running -= 1
        else:
            assert isinstance(item, BulkResult)
            yield item
    if failures:
        raise failures[0]
