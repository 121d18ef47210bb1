"""``send_many`` over worker processes, for bulk sending that uses more than one core.

Threads share one interpreter lock, so many connections on threads are bounded by one core.
With ``processes=N`` the connections are spread over N forked worker processes: this process
reads the messages in order (never all at once), hands them out in small batches, and gathers
the results as they come. Each worker runs the same pipeline as a thread would,
with its own retries. Messages must be picklable: bytes, email messages and paths are; streams
and iterators of chunks are not, and are reported failed with a ``MessageError``.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from multiprocessing.queues import Queue
from typing import TypeAlias

from mailwire.conversation.bulk import BulkFeed, BulkOptions
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.session import SessionSettings
from mailwire.drivers.sync_driver import SyncRunner
from mailwire.errors import MessageError, SmtpUsageError
from mailwire.message import MessageInput
from mailwire.outgoing import Outgoing
from mailwire.results import BulkResult
from mailwire.transport.sync_connection import SyncConnection

BATCH = 64
FLUSH_SECONDS = 0.05
_END = b""

Numbered: TypeAlias = "tuple[int, MessageInput | Outgoing]"


def send_many_in_processes(
    messages: Iterable[MessageInput | Outgoing],
    settings: Callable[[], SessionSettings],
    options: BulkOptions,
    processes: int,
) -> Iterator[BulkResult]:
    """Results in the order messages complete; ``BulkResult.index`` is the input position."""
    if "fork" not in multiprocessing.get_all_start_methods():
        raise SmtpUsageError("processes > 1 needs the fork start method (Linux, macOS)")
    context = multiprocessing.get_context("fork")
    shares = [options.connections // processes + (number < options.connections % processes)
              for number in range(processes)]
    jobs: Queue[bytes] = context.Queue(maxsize=4 * processes)
    results: Queue[bytes] = context.Queue()
    workers = [context.Process(target=_serve, args=(jobs, results, settings,
                                                    replace(options, connections=share)),
                               daemon=True, name=f"mailwire-sender-{number}")
               for number, share in enumerate(shares) if share]
    for process in workers:
        process.start()
    refused: list[BulkResult] = []
    feeder = threading.Thread(target=_feed, args=(messages, jobs, len(workers), refused),
                              daemon=True, name="mailwire-feeder")
    feeder.start()
    running = len(workers)
    try:
        while running:
            try:
                batch = results.get(timeout=1.0)
            except Exception:
                if not any(process.is_alive() for process in workers):
                    raise SmtpUsageError("the sending processes ended unexpectedly") from None
                continue
            if batch == _END:
                running -= 1
                continue
            yield from pickle.loads(batch)
            while refused:
                yield refused.pop()
        feeder.join()
        while refused:
            yield refused.pop()
    finally:
        for process in workers:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()


def _feed(messages: Iterable[MessageInput | Outgoing], jobs: Queue[bytes], workers: int,
          refused: list[BulkResult]) -> None:
    """Hand the numbered messages to the workers in batches growing from one message to
    ``BATCH`` (every worker starts at once; large batches cost less), then one end mark per
    worker."""
    batch: list[Numbered] = []
    size = 1
    try:
        for numbered in enumerate(messages):
            batch.append(numbered)
            if len(batch) >= size:
                _put(batch, jobs, refused)
                batch = []
                size = min(2 * size, BATCH)
        if batch:
            _put(batch, jobs, refused)
    finally:
        for _ in range(workers):
            jobs.put(_END)


def _put(batch: list[Numbered], jobs: Queue[bytes], refused: list[BulkResult]) -> None:
    try:
        jobs.put(pickle.dumps(batch))
    except Exception:  # some message cannot be pickled: find which
        fine = _picklable(batch, refused)
        if fine:
            jobs.put(pickle.dumps(fine))


def _picklable(batch: list[Numbered], refused: list[BulkResult]) -> list[Numbered]:
    fine: list[Numbered] = []
    for index, message in batch:
        try:
            pickle.dumps(message)
        except Exception as error:
            failure = MessageError(f"the message cannot be handed to a sending process: {error}")
            refused.append(BulkResult(index, None, failure, 0))
        else:
            fine.append((index, message))
    return fine


def _serve(jobs: Queue[bytes], results: Queue[bytes], settings: Callable[[], SessionSettings],
           options: BulkOptions) -> None:
    """A worker process: ``options.connections`` connections on threads, results in batches."""
    gathered = _Gatherer(results)
    feed = BulkFeed((), options, gathered.add, numbered=_received(jobs))
    threads = [threading.Thread(target=_connection, args=(feed, settings, options),
                                daemon=True) for _ in range(options.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gathered.close()
    results.put(_END)
    results.close()
    results.join_thread()


def _received(jobs: Queue[bytes]) -> Iterator[Numbered]:
    while (batch := jobs.get()) != _END:
        yield from pickle.loads(batch)


def _connection(feed: BulkFeed, settings: Callable[[], SessionSettings],
                options: BulkOptions) -> None:
    core = ClientCore(settings, max_in_flight=options.max_in_flight)
    SyncRunner(core, SyncConnection()).serve(feed)


class _Gatherer:
    """Collects results and sends them on in batches, or at least every ``FLUSH_SECONDS``."""

    def __init__(self, results: Queue[bytes]) -> None:
        self._results = results
        self._pending: list[BulkResult] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_now_and_then, daemon=True)
        self._flusher.start()

    def add(self, result: BulkResult) -> None:
        with self._lock:
            self._pending.append(result)
            if len(self._pending) >= BATCH:
                self._flush()

    def close(self) -> None:
        self._closed.set()
        self._flusher.join()
        with self._lock:
            self._flush()

    def _flush_now_and_then(self) -> None:
        while not self._closed.wait(FLUSH_SECONDS):
            with self._lock:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._results.put(pickle.dumps(self._pending))
            self._pending = []
