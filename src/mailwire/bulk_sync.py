"""``send_many`` for the blocking client: one connection inline, several on threads."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass

from mailwire.bulk_processes import send_many_in_processes
from mailwire.conversation.bulk import BulkFeed, BulkOptions
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.session import SessionSettings
from mailwire.drivers.sync_driver import SyncRunner
from mailwire.message import MessageInput
from mailwire.outgoing import Outgoing
from mailwire.results import BulkResult
from mailwire.transport.sync_connection import SyncConnection

Progress = Callable[[int, int | None], None]
"""``progress(done, total)``: called after each message; ``total`` is None for iterators."""
Callback = Callable[[BulkResult], None]
"""``on_sent(result)`` / ``on_failed(result)``: called with each message's result."""


@dataclass(frozen=True, slots=True)
class Callbacks:
    """What ``send_many`` calls as each result comes, before handing it out."""

    progress: Progress | None = None
    on_sent: Callback | None = None
    on_failed: Callback | None = None

    def report(self, done: int, total: int | None, outcome: BulkResult) -> None:
        if self.progress is not None:
            self.progress(done, total)
        hook = self.on_sent if outcome.sent else self.on_failed
        if hook is not None:
            hook(outcome)

    def reported(self, outcomes: Iterator[BulkResult],
                 messages: Iterable[object]) -> Iterator[BulkResult]:
        total = len(messages) if isinstance(messages, Sized) else None
        for done, outcome in enumerate(outcomes, 1):
            self.report(done, total, outcome)
            yield outcome


def send_many(
    runner: SyncRunner,
    settings: Callable[[], SessionSettings],
    messages: Iterable[MessageInput | Outgoing],
    options: BulkOptions,
    callbacks: Callbacks,
    processes: int = 1,
) -> Iterator[BulkResult]:
    """Results in the order messages complete (input order on one connection)."""
    outcomes: Iterator[BulkResult]
    if processes > 1:
        outcomes = send_many_in_processes(messages, settings, options,
                                          min(processes, options.connections))
    elif options.connections == 1:
        results: deque[BulkResult] = deque()
        outcomes = runner.drain(BulkFeed(messages, options, results.append), results)
    else:
        outcomes = _threaded(messages, settings, options)
    return callbacks.reported(outcomes, messages)


_FINISHED = object()


def serve_on_new_connection(feed: BulkFeed, settings: Callable[[], SessionSettings],
                            options: BulkOptions) -> None:
    """One more connection for ``feed``, driven by the calling thread until the feed is done."""
    core = ClientCore(settings, max_in_flight=options.max_in_flight)
    SyncRunner(core, SyncConnection()).serve(feed)


def _threaded(messages: Iterable[MessageInput | Outgoing],
              settings: Callable[[], SessionSettings],
              options: BulkOptions) -> Iterator[BulkResult]:
    finished: queue.SimpleQueue[object] = queue.SimpleQueue()
    failures: list[BaseException] = []
    feed = BulkFeed(messages, options, finished.put)

    def run_connection() -> None:
        try:
            serve_on_new_connection(feed, settings, options)
        except BaseException as failure:
            failures.append(failure)
        finally:
            finished.put(_FINISHED)

    threads = [threading.Thread(target=run_connection, name=f"mailwire-send-{number}",
                                daemon=True) for number in range(options.connections)]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            item = finished.get()
            if item is _FINISHED:
                running -= 1
            else:
                assert isinstance(item, BulkResult)
                yield item
    finally:
        feed.close()
    if failures:
        raise failures[0]
