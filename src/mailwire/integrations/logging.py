"""``SmtpHandler``: log records by mail, like ``logging.handlers.SMTPHandler``, without ever
making the application wait for a mail server.

``emit`` only formats the record and appends it to a bounded queue; a background thread sends.
What it promises:
- Records are sent in batches (one message for the records of ``batch_interval`` seconds, at
  most ``max_batch`` each) or one message per record (``batch=False``).
- At most ``rate_limit`` messages per second on average, with bursts of ``rate_burst``. Records
  that arrive faster wait and go out together in the next message allowed.
- At most ``capacity`` records wait; more are dropped (the newest: the first records of a storm
  usually say what started it), and so are records whose message could not be sent. The next
  message says how many were dropped and why; ``handler.dropped`` counts them all.
- ``flush()`` sends what is queued and waits at most ``flush_timeout`` seconds; ``close()``
  (also run by ``logging.shutdown`` at exit) flushes, sends what the rate limit still held back
  as one last message, and QUITs, within ``close_timeout`` seconds.
- A failure to send goes to ``handleError`` (printed to stderr when ``logging.raiseExceptions``),
  never into the application.
- Records logged while the handler's own thread is sending (mailwire's protocol log, say) are
  ignored, so the handler never mails about its own mail.
- In a forked child the queue starts empty, with a connection of the child's own.

Every constructor argument is a plain value, so ``logging.config.dictConfig`` can build it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from mailwire.client import SmtpClient
from mailwire.config import apply_settings, load_settings, require_host
from mailwire.errors import SmtpError, SmtpUsageError
from mailwire.security import SecurityOptions


@dataclass(frozen=True, slots=True)
class _Queued:
    record: logging.LogRecord
    text: str
    queued: float


class SmtpHandler(logging.Handler):
    """Mail log records from a background thread; see the module docstring for the rules.

    The first arguments are ``logging.handlers.SMTPHandler``'s: ``mailhost`` (``"host"`` or
    ``("host", port)``), ``fromaddr``, ``toaddrs``, ``subject``, ``credentials``
    (``(user, password)``), ``secure`` (not None: STARTTLS required; None: mailwire's ``AUTO``,
    STARTTLS when offered) and ``timeout``. ``config``/``profile`` read a mailwire configuration
    instead of ``mailhost`` and ``credentials``; any other keyword is an ``SmtpClient`` option.
    """

    def __init__(
        self,
        mailhost: str | Sequence[Any] | None = None,
        fromaddr: str | None = None,
        toaddrs: str | Sequence[str] = (),
        subject: str = "Log records",
        credentials: Sequence[str] | None = None,
        secure: Sequence[Any] | None = None,
        timeout: float = 5.0,
        *,
        level: int | str = logging.NOTSET,
        config: str | None = None,
        profile: str | None = None,
        batch: bool = True,
        batch_interval: float = 5.0,
        max_batch: int = 100,
        rate_limit: float = 0.1,
        rate_burst: int = 5,
        capacity: int = 1000,
        flush_timeout: float = 10.0,
        close_timeout: float = 15.0,
        idle_timeout: float = 30.0,
        **client_options: Any,
    ) -> None:
        super().__init__(level)
        recipients = [toaddrs] if isinstance(toaddrs, str) else list(toaddrs)
        if not recipients:
            raise SmtpUsageError("SmtpHandler needs at least one address in toaddrs")
        if max_batch < 1 or capacity < 1 or rate_burst < 1 or rate_limit <= 0:
            raise SmtpUsageError("max_batch, capacity and rate_burst must be at least 1 and "
                                 "rate_limit positive")
        self._make_client = _client_factory(mailhost, credentials, secure, timeout, config,
                                            profile, client_options)
        probe = self._make_client()
        self.fromaddr = fromaddr or _default_sender(config, profile)
        if not self.fromaddr:
            raise SmtpUsageError("SmtpHandler needs fromaddr (or sender in the configuration)")
        self.toaddrs = recipients
        self.subject = subject
        self.batch = batch
        self.batch_interval = batch_interval
        self.max_batch = max_batch
        self.rate_limit = rate_limit
        self.rate_burst = rate_burst
        self.capacity = capacity
        self.flush_timeout = flush_timeout
        self.close_timeout = close_timeout
        self.idle_timeout = idle_timeout
        self.dropped = 0
        self._where = f"{probe.host}:{probe.effective_port}"
        self._start_afresh()

    def _start_afresh(self) -> None:
        """Empty queue, no thread, no connection: at construction and in a forked child."""
        self._pid = os.getpid()
        self._state = threading.Condition(threading.Lock())
        self._queue: deque[_Queued] = deque()
        self._dropped_full = 0
        self._dropped_failed = 0
        self._tokens = float(self.rate_burst)
        self._refilled = time.monotonic()
        self._sending = False
        self._flushing = 0
        self._closing = False
        self._worker: threading.Thread | None = None
        self._worker_ident: int | None = None

    def _at_fork_reinit(self) -> None:
        super()._at_fork_reinit()  # type: ignore[misc]
        self._start_afresh()

    # -- the caller's side: never waits for the network ----------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        if os.getpid() != self._pid:
            self._start_afresh()
        if threading.get_ident() == self._worker_ident:
            return
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        with self._state:
            if self._closing:
                return
            if len(self._queue) >= self.capacity:
                self._dropped_full += 1
                self.dropped += 1
                return
            self._queue.append(_Queued(record, text, time.monotonic()))
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="mailwire-log-mailer",
                                                daemon=True)
                self._worker.start()
            self._state.notify_all()

    def flush(self) -> None:
        """Send what is queued now (the batch interval is skipped, the rate limit is not) and
        wait for it, at most ``flush_timeout`` seconds."""
        self._deliver(self.flush_timeout, last=False)

    def close(self) -> None:
        """Deliver what is queued (past the rate limit, as one last message), QUIT, stop."""
        try:
            if os.getpid() == self._pid:
                self._deliver(self.close_timeout, last=True)
        finally:
            super().close()

    def _deliver(self, timeout: float, *, last: bool) -> None:
        deadline = time.monotonic() + timeout
        with self._state:
            if self._worker is None:
                self._closing = self._closing or last
                return
            self._flushing += 1
            self._closing = self._closing or last
            self._state.notify_all()
            try:
                while self._queue or self._sending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._state.wait(remaining)
            finally:
                self._flushing -= 1
            worker = self._worker
        if last and worker is not None:
            worker.join(max(0.0, deadline - time.monotonic()))

    # -- the worker thread ------------------------------------------------------------------------

    def _run(self) -> None:
        self._worker_ident = threading.get_ident()
        client: SmtpClient | None = None
        try:
            while (taken := self._next_message(connected=client is not None)) is not None:
                records, note = taken
                if not records:
                    if client is not None:
                        _goodbye(client)
                    client = None
                    continue
                try:
                    client = client or self._make_client()
                    client.send(self._compose(records, note))
                except Exception:
                    with self._state:
                        self._dropped_failed += len(records)
                        self.dropped += len(records)
                    self.handleError(records[0].record)
        finally:
            if client is not None:
                _goodbye(client)

    def _next_message(self, *, connected: bool) -> tuple[list[_Queued], str] | None:
        """The records of the next message and the note about dropped ones; ``([], "")`` after
        ``idle_timeout`` seconds without records while connected (time to QUIT); None when
        closing with nothing left."""
        with self._state:
            self._sending = False
            self._state.notify_all()
            idle_since = time.monotonic()
            while True:
                now = time.monotonic()
                if not self._queue:
                    if self._closing:
                        return None
                    if not connected:
                        self._state.wait()
                        continue
                    if now - idle_since >= self.idle_timeout:
                        return [], ""
                    self._state.wait(self.idle_timeout - (now - idle_since))
                    continue
                wait = self._wait_before_sending(now)
                if wait <= 0:
                    break
                self._state.wait(wait)
            records = [self._queue.popleft() for _ in range(self._take_count())]
            self._tokens -= 1
            self._sending = True
            return records, self._drop_note()

    def _wait_before_sending(self, now: float) -> float:
        """Seconds before the queued records may go (0: now): a batch gathers for
        ``batch_interval`` unless full or flushed; every message waits for the rate limit,
        except the last one when closing."""
        self._tokens = min(float(self.rate_burst),
                           self._tokens + (now - self._refilled) * self.rate_limit)
        self._refilled = now
        if self._closing:
            return 0.0
        rate_wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate_limit
        gathering = (self.batch and not self._flushing and len(self._queue) < self.max_batch)
        gather_wait = self.batch_interval - (now - self._queue[0].queued) if gathering else 0.0
        return max(rate_wait, gather_wait)

    def _take_count(self) -> int:
        """How many records the next message carries: a batch, or one record; but everything
        queued (up to a batch) when this is the last message the rate limit allows for now,
        and everything when it is the last one of all."""
        queued = len(self._queue)
        if self._closing and self._tokens < 1:
            return queued
        if not self.batch and (self._tokens >= 2 or queued == 1):
            return 1
        return min(queued, self.max_batch)

    def _drop_note(self) -> str:
        notes = []
        if self._dropped_full:
            notes.append(f"{self._dropped_full} dropped because the queue was full "
                         f"({self.capacity} records)")
        if self._dropped_failed:
            notes.append(f"{self._dropped_failed} lost because their message could not be sent")
        self._dropped_full = self._dropped_failed = 0
        return f"[mailwire: since the last message, {'; '.join(notes)}]\n\n" if notes else ""

    def _compose(self, records: list[_Queued], note: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.fromaddr
        message["To"] = ", ".join(self.toaddrs)
        message["Subject"] = self.getSubject([queued.record for queued in records])
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="mailwire.log")
        message.set_content(note + "\n\n".join(queued.text for queued in records))
        return message

    def getSubject(self, records: list[logging.LogRecord]) -> str:
        """The subject of a message of ``records``; override to change it."""
        if len(records) == 1:
            return self.subject
        return f"{self.subject} ({len(records)} records)"

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<SmtpHandler {self._where} to {', '.join(self.toaddrs)} ({level})>"


def _client_factory(
    mailhost: str | Sequence[Any] | None,
    credentials: Sequence[str] | None,
    secure: Sequence[Any] | None,
    timeout: float,
    config: str | None,
    profile: str | None,
    options: dict[str, Any],
) -> Callable[[], SmtpClient]:
    if config is not None or profile is not None or mailhost is None:
        settings = load_settings(config, profile)
        host = require_host(settings)

        def from_settings() -> SmtpClient:
            client = SmtpClient(host, **({"timeout": timeout, "greeting_timeout": timeout}
                                         | options))
            apply_settings(settings, client)
            return client

        from_settings()
        return from_settings
    if isinstance(mailhost, str):
        host, port = mailhost, None
    else:
        host, port = str(mailhost[0]), int(mailhost[1])
    username, password = (credentials[0], credentials[1]) if credentials else (None, None)
    options.setdefault("greeting_timeout", timeout)
    options.setdefault("security", SecurityOptions.SSL_EXPLICIT if secure is not None
                       else SecurityOptions.AUTO)

    def make() -> SmtpClient:
        return SmtpClient(host, port, username, password, timeout=timeout, **options)

    try:
        make()
    except TypeError as error:
        raise SmtpUsageError(f"unknown SmtpHandler option: {error}") from None
    return make


def _default_sender(config: str | None, profile: str | None) -> str | None:
    if config is None and profile is None:
        return None
    return load_settings(config, profile, resolve_secrets=False).sender


def _goodbye(client: SmtpClient) -> None:
    try:
        client.quit()
    except SmtpError:
        client.close()
