"""Small-message send loops, one per client, all with the same shape:
``send(target, count, connections) -> Outcome``.

Each one connects, sends ``count`` copies of ``message`` (the same envelope for all) over
``connections`` connections, and says QUIT; the caller times the whole call. Where a client has
no multi-connection API, its connections are threads (blocking clients) or tasks (asyncio
clients) that take messages from one shared counter until it runs out.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import smtplib
import socket
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib

import mailwire
from benchmarks.corpus import RECIPIENT, SENDER
from benchmarks.sinks import HOST, SMTP_SOURCE, find_tool

TIMEOUT = 60.0


@dataclass
class Outcome:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    child_cpu: float = 0.0  # CPU seconds of a child process (smtp-source), not in our rusage

    def fail(self, error: BaseException | str) -> None:
        self.failed += 1
        if len(self.errors) < 3:
            self.errors.append(str(error))


@dataclass(frozen=True)
class Target:
    """Where and what to send: the sink's port, the message, and its ``smtp-source`` file."""

    port: int
    message: bytes
    smtp_source_file: Path


Sender = Callable[[Target, int, int], Outcome]


class Tickets:
    """``count`` turns shared by several threads or tasks; ``take()`` is False when none are
    left. ``next`` on ``itertools.count`` is atomic under the GIL."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._numbers: Iterator[int] = itertools.count()

    def take(self) -> bool:
        return next(self._numbers) < self._count


def _in_threads(connections: int, body: Callable[[Outcome], None]) -> Outcome:
    outcomes = [Outcome() for _ in range(connections)]

    def guarded(outcome: Outcome) -> None:
        try:
            body(outcome)
        except Exception as error:  # a failed connection: count it, keep the others
            outcome.fail(error)

    threads = [threading.Thread(target=guarded, args=(outcome,)) for outcome in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _merge(outcomes)


def _in_tasks(connections: int, body: Callable[[Outcome], Awaitable[None]]) -> Outcome:
    async def main() -> list[Outcome]:
        outcomes = [Outcome() for _ in range(connections)]

        async def guarded(outcome: Outcome) -> None:
            try:
                await body(outcome)
            except Exception as error:
                outcome.fail(error)

        await asyncio.gather(*(guarded(outcome) for outcome in outcomes))
        return outcomes

    return _merge(asyncio.run(main()))


def _merge(outcomes: list[Outcome]) -> Outcome:
    merged = Outcome()
    for outcome in outcomes:
        merged.sent += outcome.sent
        merged.failed += outcome.failed
        merged.errors += outcome.errors
    return merged


# -- mailwire --------------------------------------------------------------------------------

def mailwire_send_loop(target: Target, count: int, connections: int) -> Outcome:
    """``SmtpClient.send`` in a loop: one message at a time, no pipelining across messages."""
    tickets = Tickets(count)

    def one_connection(outcome: Outcome) -> None:
        with mailwire.SmtpClient(HOST, target.port, security="none", timeout=TIMEOUT) as client:
            while tickets.take():
                client.send(target.message, sender=SENDER, recipients=[RECIPIENT])
                outcome.sent += 1

    return _in_threads(connections, one_connection)


def mailwire_async_send_loop(target: Target, count: int, connections: int) -> Outcome:
    """``AsyncSmtpClient.send`` awaited in a loop on each connection (one task per connection)."""
    tickets = Tickets(count)

    async def one_connection(outcome: Outcome) -> None:
        async with mailwire.AsyncSmtpClient(HOST, target.port, security="none",
                                            timeout=TIMEOUT) as client:
            while tickets.take():
                await client.send(target.message, sender=SENDER, recipients=[RECIPIENT])
                outcome.sent += 1

    return _in_tasks(connections, one_connection)


def _bulk_outcome(outcome: Outcome, result: mailwire.BulkResult) -> None:
    if result.sent:
        outcome.sent += 1
    else:
        outcome.fail(result.error or "not sent")


def mailwire_send_many(target: Target, count: int, connections: int) -> Outcome:
    """``SmtpClient.send_many``: pipelined, several connections on mailwire's own threads."""
    outcome = Outcome()
    item = mailwire.Outgoing(target.message, SENDER, [RECIPIENT])
    with mailwire.SmtpClient(HOST, target.port, security="none", timeout=TIMEOUT) as client:
        for result in client.send_many(itertools.repeat(item, count), connections=connections):
            _bulk_outcome(outcome, result)
    return outcome


def mailwire_send_many_processes(target: Target, count: int, connections: int) -> Outcome:
    """``SmtpClient.send_many(processes=...)``: the connections spread over worker processes
    (up to two per core), so that bulk sending is not bounded by one core."""
    outcome = Outcome()
    item = mailwire.Outgoing(target.message, SENDER, [RECIPIENT])
    processes = min(connections, 2 * (os.cpu_count() or 1))
    with mailwire.SmtpClient(HOST, target.port, security="none", timeout=TIMEOUT) as client:
        for result in client.send_many(itertools.repeat(item, count), connections=connections,
                                       processes=processes):
            _bulk_outcome(outcome, result)
    return outcome


def mailwire_async_send_many(target: Target, count: int, connections: int) -> Outcome:
    """``AsyncSmtpClient.send_many``: pipelined, several connections as tasks on one loop."""
    outcome = Outcome()
    item = mailwire.Outgoing(target.message, SENDER, [RECIPIENT])

    async def main() -> None:
        async with mailwire.AsyncSmtpClient(HOST, target.port, security="none",
                                            timeout=TIMEOUT) as client:
            async for result in client.send_many(itertools.repeat(item, count),
                                                 connections=connections):
                _bulk_outcome(outcome, result)

    asyncio.run(main())
    return outcome


# -- peers -----------------------------------------------------------------------------------

def smtplib_loop(target: Target, count: int, connections: int) -> Outcome:
    """``smtplib.SMTP.sendmail`` in a loop on each connection (one thread per connection)."""
    tickets = Tickets(count)

    def one_connection(outcome: Outcome) -> None:
        with smtplib.SMTP(HOST, target.port, timeout=TIMEOUT) as client:
            client.ehlo()
            while tickets.take():
                refused = client.sendmail(SENDER, [RECIPIENT], target.message)
                if refused:
                    outcome.fail(repr(refused))
                else:
                    outcome.sent += 1

    return _in_threads(connections, one_connection)


def aiosmtplib_loop(target: Target, count: int, connections: int) -> Outcome:
    """``aiosmtplib.SMTP.sendmail`` in a loop on each connection (one task per connection)."""
    tickets = Tickets(count)

    async def one_connection(outcome: Outcome) -> None:
        client = aiosmtplib.SMTP(hostname=HOST, port=target.port, timeout=TIMEOUT,
                                 start_tls=False)
        await client.connect()
        await client.ehlo()
        while tickets.take():
            refused, _ = await client.sendmail(SENDER, [RECIPIENT], target.message)
            if refused:
                outcome.fail(repr(refused))
            else:
                outcome.sent += 1
        await client.quit()

    return _in_tasks(connections, one_connection)


def pipelined_socket_loop(target: Target, count: int, connections: int) -> Outcome:
    """The ceiling of one round trip per message: a bare socket loop with no SMTP logic at all
    (no parsing beyond counting reply lines, no checks), pipelining as RFC 2920 allows: the
    end of one message's data and the next MAIL, RCPT and DATA in one write."""
    tickets = Tickets(count)
    envelope = f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{RECIPIENT}>\r\nDATA\r\n".encode()
    data = target.message.replace(b"\n.", b"\n..") + b"\r\n.\r\n"

    def one_connection(outcome: Outcome) -> None:
        with socket.create_connection((HOST, target.port), timeout=TIMEOUT) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pending = b""

            def replies(wanted: int) -> None:
                nonlocal pending
                while pending.count(b"\n") < wanted:
                    pending += sock.recv(65536)
                for _ in range(wanted):
                    pending = pending[pending.index(b"\n") + 1 :]

            replies(1)
            sock.sendall(b"EHLO bench.example\r\n")
            while not pending.endswith(b"\n") or b"\n250 " not in b"\n" + pending:
                pending += sock.recv(65536)
            pending = b""
            if not tickets.take():
                return
            sock.sendall(envelope)
            replies(3)
            while True:
                more = tickets.take()
                sock.sendall(data + envelope if more else data)
                replies(4 if more else 1)
                outcome.sent += 1
                if not more:
                    break
            sock.sendall(b"QUIT\r\n")

    return _in_threads(connections, one_connection)


def smtp_source(target: Target, count: int, connections: int) -> Outcome:
    """Postfix's ``smtp-source -d -s N -m COUNT -F FILE``: C, no pipelining, HELO."""
    command = [find_tool(SMTP_SOURCE), "-d", "-s", str(connections), "-m", str(count),
               "-F", str(target.smtp_source_file), "-f", SENDER, "-t", RECIPIENT,
               f"{HOST}:{target.port}"]
    before = os.times()
    finished = subprocess.run(command, capture_output=True, check=False)
    after = os.times()
    outcome = Outcome(child_cpu=(after.children_user - before.children_user)
                      + (after.children_system - before.children_system))
    if finished.returncode == 0:
        outcome.sent = count
    else:
        outcome.fail(f"smtp-source exited {finished.returncode}: "
                     f"{finished.stderr.decode(errors='replace').strip()[-300:]}")
    return outcome


SENDERS: dict[str, Sender] = {
    "mailwire-send": mailwire_send_loop,
    "mailwire-async-send": mailwire_async_send_loop,
    "mailwire-send-many": mailwire_send_many,
    "mailwire-send-many-processes": mailwire_send_many_processes,
    "mailwire-async-send-many": mailwire_async_send_many,
    "smtplib": smtplib_loop,
    "aiosmtplib": aiosmtplib_loop,
    "smtp-source": smtp_source,
    "pipelined-socket": pipelined_socket_loop,
}
