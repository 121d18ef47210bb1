"""``SmtpPool``: up to N authenticated connections to one server, shared by the threads of a
process.

``send``, ``send_mail`` and ``send_many`` borrow a connection and give it back; ``borrow()``
lends a whole ``SmtpClient`` for a block of work. A borrowed client is used by one caller at a
time. When all N are busy a caller waits up to ``wait_timeout`` seconds, then gets
``SmtpTimeoutError``. Connections idle for ``idle_timeout`` seconds are QUIT by a background
thread. A connection the server closed while it sat idle is replaced by the client itself, which
resends a message only when none of its data had been sent. ``close()`` QUITs every connection.
See ``mailwire.pool.forks`` for what happens in a forked child.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from mailwire.bulk_sync import Callback, Callbacks, Progress
from mailwire.client import SmtpClient
from mailwire.conversation.bulk import DEFAULT_MAX_IN_FLIGHT, BulkOptions
from mailwire.errors import SmtpError, SmtpTimeoutError, SmtpUsageError
from mailwire.message import MessageInput
from mailwire.outgoing import Outgoing
from mailwire.pool.base import PoolBase
from mailwire.pool.ledger import Ledger
from mailwire.pool.spread import quit_quietly, spread
from mailwire.results import BulkResult, SendResult


class SmtpPool(PoolBase[SmtpClient]):
    """A thread-safe pool of ``SmtpClient`` connections to one server with one set of options.

    ``SmtpPool(host, port, username, password, security, max_connections=4, idle_timeout=60.0,
    wait_timeout=30.0, **client_options)`` takes every ``SmtpClient`` option (``timeout``,
    ``proxy``, ``bind_endpoint``, ``supported_encryption``, ``allowed_authentication``, ...);
    ``SmtpPool.from_config(path, profile)`` reads them from a configuration file.
    """

    _kind = SmtpClient

    def _start_generation(self) -> None:
        self._pid = os.getpid()
        self._condition = threading.Condition(threading.Lock())
        self._ledger: Ledger[SmtpClient] = Ledger(self.max_connections, self.idle_timeout)
        self._reaper: threading.Thread | None = None
        self._generation = object()

    def _current(self) -> threading.Condition:
        if os.getpid() != self._pid:
            self._forget_parent()
        return self._condition

    # -- borrowing -------------------------------------------------------------------------------

    @contextmanager
    def borrow(self) -> Iterator[SmtpClient]:
        """``with pool.borrow() as client:`` a client for this caller alone until the block
        ends. If the block is left by anything but a mailwire error (an interrupt, a failure in
        the caller's code), the client is closed rather than reused."""
        client, generation = self._acquire(wait=True)
        assert client is not None
        try:
            yield client
        except SmtpError:
            self._release(client, generation)
            raise
        except BaseException:
            self._release(client, generation, broken=True)
            raise
        self._release(client, generation)

    def _acquire(self, *, wait: bool) -> tuple[SmtpClient | None, object]:
        """A client and the generation it belongs to; (None, ...) when ``wait`` is False and
        none is free."""
        condition = self._current()
        deadline = time.monotonic() + self.wait_timeout
        stale: list[SmtpClient] = []
        try:
            with condition:
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
                    condition.wait(remaining)
        finally:
            for old in stale:
                old.close()
        if client is None:
            try:
                client = self._make_client()
            except BaseException:
                with condition:
                    self._ledger.discard()
                    condition.notify()
                raise
        return client, generation

    def _release(self, client: SmtpClient, generation: object, *, broken: bool = False) -> None:
        condition = self._current()
        if generation is not self._generation:
            return  # borrowed before a fork: the parent's, never reused here
        with condition:
            closed = self._ledger.closed
            if broken or closed:
                self._ledger.discard()
            else:
                self._ledger.give_back(client, time.monotonic())
                self._start_reaper()
            condition.notify()
        if broken:
            client.close()
        elif closed:
            quit_quietly(client)

    def _start_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=_reap, args=(weakref.ref(self),),
                                            name="mailwire-pool-reaper", daemon=True)
            self._reaper.start()

    # -- sending ---------------------------------------------------------------------------------

    def send(self, message: MessageInput | Outgoing, **options: Any) -> SendResult:
        """Send one message on a pooled connection; ``options`` are ``SmtpClient.send``'s
        (``sender``, ``recipients``, ``notify``, ``require_tls``, ...)."""
        with self.borrow() as client:
            return client.send(message, **options)

    def send_mail(self, sender: str, recipients: str | Iterable[str], subject: str, body: str,
                  *, html: str | None = None) -> SendResult:
        with self.borrow() as client:
            return client.send_mail(sender, recipients, subject, body, html=html)

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
    ) -> Iterator[BulkResult]:
        """Send many messages pipelined on pooled connections; results as they complete.

        It waits for one pooled connection and takes up to ``connections - 1`` more only if
        they are free at once (so two batches never wait for each other's connections). The
        other options are ``SmtpClient.send_many``'s; ``rate_limit`` is over all connections.
        """
        BulkOptions(connections, max_attempts, retry_delay, rate_limit=rate_limit,
                    messages_per_connection=messages_per_connection,
                    max_in_flight=max_in_flight)  # the client's checks, before borrowing
        options: dict[str, Any] = {"max_attempts": max_attempts, "retry_delay": retry_delay,
                                   "messages_per_connection": messages_per_connection,
                                   "max_in_flight": max_in_flight}
        return self._send_many(messages, connections, rate_limit,
                               Callbacks(progress, on_sent, on_failed), options)

    def _send_many(self, messages: Iterable[MessageInput | Outgoing], connections: int,
                   rate_limit: float | None, callbacks: Callbacks,
                   options: dict[str, Any]) -> Iterator[BulkResult]:
        with contextlib.ExitStack() as borrowed:
            clients = [borrowed.enter_context(self.borrow())]
            for _ in range(connections - 1):
                client, generation = self._acquire(wait=False)
                if client is None:
                    break
                borrowed.enter_context(_lent(self, client, generation))
                clients.append(client)
            yield from spread(clients, messages, rate_limit, callbacks, options)

    # -- state and closing -----------------------------------------------------------------------

    @property
    def idle(self) -> int:
        """Clients waiting in the pool (connected or not)."""
        with self._current():
            return self._ledger.idle

    @property
    def in_use(self) -> int:
        """Clients borrowed right now."""
        with self._current():
            return self._ledger.in_use

    def close(self) -> None:
        """QUIT every idle connection now and every borrowed one when it is given back;
        borrowing afterwards raises ``SmtpUsageError``."""
        condition = self._current()
        with condition:
            drained = self._ledger.close()
            condition.notify_all()
        for client in drained:
            quit_quietly(client)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@contextmanager
def _lent(pool: SmtpPool, client: SmtpClient, generation: object) -> Iterator[None]:
    """Give back a client taken with ``_acquire`` when the block ends, as ``borrow`` does."""
    try:
        yield
    except SmtpError:
        pool._release(client, generation)
        raise
    except BaseException:
        pool._release(client, generation, broken=True)
        raise
    pool._release(client, generation)


def _reap(reference: weakref.ref[SmtpPool]) -> None:
    """QUIT idle connections as they expire; end when nothing is idle or the pool is gone."""
    while True:
        pool = reference()
        if pool is None:
            return
        condition = pool._current()
        with condition:
            if pool._reaper is not threading.current_thread():
                return
            expiry = pool._ledger.next_expiry()
            if expiry is None or pool._ledger.closed:
                pool._reaper = None
                return
            wait = expiry - time.monotonic()
            if wait > 0:
                del pool
                condition.wait(wait)
                continue
            stale = pool._ledger.expire(time.monotonic())
        del pool
        for client in stale:
            quit_quietly(client)
