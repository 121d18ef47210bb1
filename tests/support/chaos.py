"""Misbehaving servers for the hardening tests: a counting chaos SMTP server and a raw server.

``chaos_server`` (fixture) starts a ``ChaosServer``: aiosmtpd's ``SMTP`` protocol, subclassed so
that, driven by a seeded random generator, it answers some commands 451 or 421 (and then closes,
as a real server does after 421), drops some connections without a word at every stage (before
the greeting, after EHLO, MAIL, RCPT, DATA, and after the end of the data, before or *after* it
counted the message), refuses some messages after their data with 4xx or 5xx, and sometimes
goes quiet after counting a message (the client times out: the message was accepted but the
client cannot know). Every message it keeps is counted by its ``X-Soak-Id`` header, so a test
can check that no message was accepted twice and that the client's report matches the tally.

``RawServer`` is a bare TCP server on 127.0.0.1 whose connections are handled by a plain
function ``handler(sock)``, each on its own thread: for peers that must do what no script step
can (stop reading, answer binary proxy handshakes, flood).

To use the fixture, import it into a test module (``from tests.support.chaos import
chaos_server  # noqa: F401``) or list ``"tests.support.chaos"`` in ``tests/conftest.py``'s
``pytest_plugins``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = [
    "ChaosServer",
    "Faults",
    "RawServer",
    "chaos_server",
    "raw_server",
    "soak_id",
]

SOAK_HEADER = b"X-Soak-Id:"
_LOG = logging.getLogger("tests.chaos")


def soak_id(data: bytes) -> str | None:
    """The ``X-Soak-Id`` header value of a message, or None."""
    header_end = data.find(b"\r\n\r\n")
    headers = data if header_end < 0 else data[:header_end]
    for line in headers.split(b"\r\n"):
        if line[: len(SOAK_HEADER)].lower() == SOAK_HEADER.lower():
            return line[len(SOAK_HEADER):].strip().decode("ascii", "replace")
    return None


@dataclass(frozen=True)
class Faults:
    """Probabilities of each fault, per occasion (connection, command or message)."""

    greeting_421: float = 0.02
    greeting_drop: float = 0.01
    ehlo_421: float = 0.01
    ehlo_drop: float = 0.01
    mail_451: float = 0.02
    mail_421: float = 0.01
    mail_drop: float = 0.01
    rcpt_451: float = 0.02
    rcpt_421: float = 0.01
    rcpt_drop: float = 0.01
    data_451: float = 0.01
    data_421: float = 0.01
    data_drop: float = 0.01
    """At the DATA command, before 354."""
    refuse_451: float = 0.02
    """After the end of data: 451, the message is not kept."""
    refuse_554: float = 0.01
    """After the end of data: 554, the message is not kept."""
    drop_before_count: float = 0.01
    """After the end of data: the connection is dropped and the message is not kept."""
    drop_after_count: float = 0.02
    """After the end of data: the message is kept and counted, then the connection dropped."""
    silent_after_count: float = 0.002
    """After the end of data: the message is kept and counted, and no verdict ever comes."""
    silence: float = 2.0
    """How long the silent fault stays quiet (more than the client's timeout)."""

    @classmethod
    def none(cls) -> Faults:
        return cls(**{name: 0.0 for name in cls.__dataclass_fields__ if name != "silence"})


@dataclass
class ChaosStats:
    """What the server did, for the test's report."""

    connections: int = 0
    faults: Counter[str] = field(default_factory=Counter)


class _Dropped(Exception):
    """Raised inside the protocol after the connection was aborted on purpose."""


class _ChaosSMTP(SMTP):
    """aiosmtpd's SMTP protocol with faults injected at every stage."""

    def __init__(self, server: ChaosServer, **kwargs: Any) -> None:
        self._chaos = server
        super().__init__(_ChaosHandler(server), **kwargs)

    async def _handle_client(self) -> None:
        server = self._chaos
        server._connection_started()
        try:
            if server.roll("greeting_drop"):
                await self._drop()
            if server.roll("greeting_421"):
                await self._closing("421 4.3.2 chaos: not now")
            await super()._handle_client()
        finally:
            server._connection_finished()

    async def smtp_DATA(self, arg: str) -> None:
        if self.envelope is not None and self.envelope.rcpt_tos:
            if self._chaos.roll("data_drop"):
                await self._drop()
            if self._chaos.roll("data_421"):
                await self._closing("421 4.3.2 chaos: closing at DATA")
            if self._chaos.roll("data_451"):
                await self.push("451 4.3.0 chaos: try DATA later")
                return
        await super().smtp_DATA(arg)

    async def _drop(self) -> None:
        """Abort the connection (no reply) and wait to be cancelled by ``connection_lost``."""
        if self.transport is not None:
            self.transport.abort()
        await asyncio.sleep(3600)
        raise _Dropped

    async def _closing(self, reply: str) -> None:
        """Say ``reply`` (a 421), close the connection, and wait to be cancelled."""
        await self.push(reply)
        if self.transport is not None:
            self.transport.close()
        await asyncio.sleep(3600)
        raise _Dropped


class _ChaosHandler:
    """The aiosmtpd handler: faults at EHLO, MAIL and RCPT; counting and faults after data."""

    def __init__(self, server: ChaosServer) -> None:
        self._server = server

    async def handle_EHLO(self, smtp: _ChaosSMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self._server.roll("ehlo_drop"):
            await smtp._drop()
        if self._server.roll("ehlo_421"):
            await smtp._closing("421 4.3.2 chaos: closing at EHLO")
        keywords = [line[4:] for line in responses if "AUTH" not in line]
        keywords.insert(1, "PIPELINING")
        last = len(keywords) - 1
        return [f"250{' ' if i == last else '-'}{keyword}" for i, keyword in enumerate(keywords)]

    async def handle_MAIL(self, smtp: _ChaosSMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if self._server.roll("mail_drop"):
            await smtp._drop()
        if self._server.roll("mail_421"):
            await smtp._closing("421 4.3.2 chaos: closing at MAIL")
        if self._server.roll("mail_451"):
            return "451 4.3.0 chaos: try MAIL later"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, smtp: _ChaosSMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        if self._server.roll("rcpt_drop"):
            await smtp._drop()
        if self._server.roll("rcpt_421"):
            await smtp._closing("421 4.3.2 chaos: closing at RCPT")
        if self._server.roll("rcpt_451"):
            return "451 4.3.0 chaos: try RCPT later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, smtp: _ChaosSMTP, session: Session, envelope: Envelope) -> str:
        server = self._server
        if server.roll("drop_before_count"):
            await smtp._drop()
        if server.roll("refuse_451"):
            return "451 4.3.0 chaos: message not kept, try later"
        if server.roll("refuse_554"):
            server._refuse(envelope.original_content or b"")
            return "554 5.7.1 chaos: message refused"
        server._count(envelope.original_content or b"")
        if server.roll("drop_after_count"):
            await smtp._drop()
        if server.roll("silent_after_count"):
            await asyncio.sleep(server.faults.silence)
        return "250 2.0.0 OK: kept"


class ChaosServer:
    """A counting SMTP server with injected faults, on its own event loop thread."""

    host = "127.0.0.1"

    def __init__(self, faults: Faults | None = None, *, seed: int = 1) -> None:
        self.faults = faults or Faults()
        self.random = random.Random(seed)
        self.stats = ChaosStats()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._counts: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._unlabelled = 0
        self._active = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    # -- what the test reads --------------------------------------------------------------------

    @property
    def counts(self) -> Counter[str]:
        """How many times each ``X-Soak-Id`` was kept."""
        with self._lock:
            return Counter(self._counts)

    @property
    def unlabelled(self) -> int:
        with self._lock:
            return self._unlabelled

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no connection is being served (every handler has finished)."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._active == 0, timeout):
                raise TimeoutError(f"chaos server: {self._active} connection(s) still active")

    def reset(self, *, seed: int | None = None) -> None:
        with self._lock:
            self._counts.clear()
            self._refused.clear()
            self._unlabelled = 0
            self.stats = ChaosStats()
            if seed is not None:
                self.random.seed(seed)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.set_exception_handler(_quiet)
            self._server = loop.run_until_complete(
                loop.create_server(self._protocol, self.host, 0, backlog=128)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                self._server.close()
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=serve, name="chaos-smtp", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the chaos server did not start")

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> ChaosServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- for the protocol -------------------------------------------------------------------------

    def roll(self, fault: str) -> bool:
        """Whether ``fault`` happens this time (counted in ``stats.faults`` when it does)."""
        probability: float = getattr(self.faults, fault)
        with self._lock:
            happens = probability > 0 and self.random.random() < probability
            if happens:
                self.stats.faults[fault] += 1
        return happens

    def _protocol(self) -> _ChaosSMTP:
        return _ChaosSMTP(self, hostname="chaos.test", ident="ESMTP chaos", loop=self._loop,
                          data_size_limit=None, timeout=30)

    def refusals(self) -> Counter[str]:
        """How many times each labelled message was refused for good (554)."""
        with self._lock:
            return Counter(self._refused)

    def _refuse(self, data: bytes) -> None:
        label = soak_id(data)
        if label is not None:
            with self._lock:
                self._refused[label] += 1

    def _count(self, data: bytes) -> None:
        label = soak_id(data)
        with self._lock:
            if label is None:
                self._unlabelled += 1
            else:
                self._counts[label] += 1

    def _connection_started(self) -> None:
        with self._lock:
            self._active += 1
            self.stats.connections += 1

    def _connection_finished(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Dropped connections are the point here: keep their noise out of the test output."""
    error = context.get("exception")
    if isinstance(error, ConnectionError | asyncio.CancelledError | _Dropped):
        return
    _LOG.debug("chaos server: %s", context.get("message"))


@pytest.fixture
def chaos_server() -> Iterator[Callable[..., ChaosServer]]:
    """``chaos_server(faults=None, seed=1)``: a started ``ChaosServer``, stopped after the test."""
    started: list[ChaosServer] = []

    def start(faults: Faults | None = None, *, seed: int = 1) -> ChaosServer:
        server = ChaosServer(faults, seed=seed)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# -- a raw TCP server whose connections a function handles ------------------------------------


class RawServer:
    """A TCP listener on 127.0.0.1; each accepted connection runs ``handler(sock)`` on a thread.

    The handler owns the socket for its lifetime; it is closed when the handler returns (or
    when the server stops). Exceptions in handlers are collected in ``errors``.
    """

    host = "127.0.0.1"

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self._handler = handler
        self._listener = socket.create_server((self.host, 0), backlog=16)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.accepted = 0
        self._accepting = threading.Thread(target=self._accept, name=f"raw-{self.port}",
                                           daemon=True)

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    def start(self) -> RawServer:
        self._accepting.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._accepting.join(5)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._sockets.append(sock)
                thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
                self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(10)
            self._handler(sock)
        except OSError:
            pass
        except BaseException as error:
            with self._lock:
                self.errors.append(error)
        finally:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    """``raw_server(handler)``: a started ``RawServer``, stopped after the test."""
    started: list[RawServer] = []

    def start(handler: Callable[[socket.socket], None]) -> RawServer:
        server = RawServer(handler).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    errors = [error for server in started for error in server.errors]
    if errors:
        pytest.fail(f"raw server handler errors: {errors!r}", pytrace=False)
