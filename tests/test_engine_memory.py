"""The connection engine against an in-memory server, interrupted at every step (no sockets).

For each scripted server behaviour (extensions, refusals, a Postfix-like server that keeps a
refused transaction open, a 421) and each way of sending (``send`` one after another,
``send_many`` with a window, one message at a time), the conversation is first run clean to
count its steps; then it is run again once per step and per fault: an exception that is not the
server's (as KeyboardInterrupt or a cancellation), the connection lost half-way through a write,
and the connection lost right after a write (the server got everything, the client none of the
replies). Every run checks what SECURITY.md, "Interruption and sharing" promises:

- a message reported sent was delivered exactly once, whole, to its accepted recipients;
- a message reported refused or not sent was not delivered; one reported unknown
  (``DeliveryUnknownError``) at most once; nothing is ever delivered twice or mixed with
  another message's content or recipients;
- afterwards the same client sends a new message, and the server gets exactly that message:
  nothing of the interrupted conversation is spliced into it.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, replace

import pytest

from mailwire import DeliveryUnknownError, SecurityOptions, SendResult, SmtpError
from mailwire.conversation import pipeline
from mailwire.conversation.bulk import BulkFeed, BulkOptions
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.session import SessionSettings
from mailwire.conversation.tickets import Ticket
from mailwire.drivers.sync_driver import SyncRunner
from mailwire.outgoing import Outgoing
from mailwire.protocol.state import Phase
from mailwire.results import BulkResult
from mailwire.transport.endpoint import Endpoint
from tests.support.memory import Fault, Interrupted, MemoryServer, MemoryTransport

SETTINGS = SessionSettings(endpoint=Endpoint("memory.test", 25), security=SecurityOptions.NONE,
                           timeout=5.0, greeting_timeout=5.0, local_hostname="client.test")
FAULTS = ("interrupt", "drop", "drop_after")


@dataclass(frozen=True)
class Message:
    sender: str
    recipients: tuple[str, ...]
    content: bytes


def message(number: int, recipients: tuple[str, ...], size: int) -> Message:
    head = (f"From: s{number}@memory.test\r\nTo: {', '.join(recipients)}\r\n"
            f"Subject: message {number}\r\n\r\n").encode()
    line = f"line of message {number} .x\r\n".encode()
    body = b".leading dot\r\n" + line * max(1, (size - len(head)) // len(line))
    return Message(f"s{number}@memory.test", recipients, head + body)


def messages(size: int) -> list[Message]:
    return [message(0, ("a0@memory.test", "b0@memory.test"), size),
            message(1, ("a1@memory.test",), size),
            message(2, ("a2@memory.test", "b2@memory.test"), size)]


SERVERS = {
    "accepting": {},
    "refuses a recipient": {"refuse_rcpt": frozenset({"b0@memory.test", "a1@memory.test"})},
    "rejects at end": {"reject_data": frozenset({"a1@memory.test"})},
    "rejects at end, keeps it open": {"reject_data": frozenset({"a1@memory.test"}),
                                      "keep_failed_transaction": True},
    "tempfails at end": {"tempfail_data": frozenset({"a1@memory.test"})},
    "refuses a sender": {"refuse_mail": frozenset({"s0@memory.test"})},
    "421 at a recipient": {"close_at": frozenset({"b2@memory.test"})},
}
EXTENSIONS = {
    "pipelining+chunking": ("PIPELINING", "CHUNKING", "8BITMIME"),
    "pipelining": ("PIPELINING", "8BITMIME"),
    "chunking": ("CHUNKING", "8BITMIME"),
    "neither": ("8BITMIME",),
}
WAYS = ("send", "send_many", "send_many one at a time", "send and send_many together")
"""The last way is two callers on one pipeline: a ``send`` waiting (as from another thread)
while ``send_many`` drives the connection; whoever holds it after an interruption finishes."""


def run(server: MemoryServer, transport: MemoryTransport, way: str,
        batch: list[Message]) -> tuple[dict[int, SendResult | SmtpError], SyncRunner, bool]:
    core = ClientCore(lambda: SETTINGS)
    runner = SyncRunner(core, transport)  # type: ignore[arg-type]
    outcomes: dict[int, SendResult | SmtpError] = {}
    interrupted = False
    waiting = None
    try:
        if way == "send and send_many together":
            waiting = core.ticket(Outgoing(batch[0].content, batch[0].sender,
                                           batch[0].recipients))
            core.direct.put(waiting)
            results: deque[BulkResult] = deque()
            feed = BulkFeed([Outgoing(item.content, item.sender, item.recipients)
                             for item in batch[1:]],
                            BulkOptions(max_attempts=3, retry_delay=0.0), results.append)
            for result in runner.drain(feed, results):
                outcome = result.result if result.result is not None else result.error
                assert outcome is not None
                outcomes[result.index + 1] = outcome
        elif way == "send":
            for index, item in enumerate(batch):
                try:
                    outcomes[index] = runner.send(core.ticket(
                        Outgoing(item.content, item.sender, item.recipients)))
                except SmtpError as error:
                    outcomes[index] = error
        else:
            results: deque[BulkResult] = deque()
            window = 1 if way.endswith("one at a time") else 32
            options = BulkOptions(max_attempts=3, retry_delay=0.0, max_in_flight=window)
            feed = BulkFeed([Outgoing(item.content, item.sender, item.recipients)
                             for item in batch], options, results.append)
            for result in runner.drain(feed, results):
                outcome = result.result if result.result is not None else result.error
                assert outcome is not None
                outcomes[result.index] = outcome
    except Interrupted:
        interrupted = True
    if waiting is not None:
        try:
            finish_waiting(runner, waiting)
        except Interrupted:
            interrupted = True
        if waiting.done:
            outcome = waiting.result if waiting.result is not None else waiting.error
            assert outcome is not None
            outcomes[0] = outcome
    return outcomes, runner, interrupted


def finish_waiting(runner: SyncRunner, ticket: Ticket) -> None:
    """What the waiting ``send`` does once it holds the connection: drive until its ticket
    is settled (``SyncRunner.send`` after its turn comes)."""
    if not ticket.done and runner._hold(lambda: ticket.done):
        try:
            runner._drive(lambda: ticket.done)
        finally:
            runner._let_go()


def check(server: MemoryServer, batch: list[Message],
          outcomes: dict[int, SendResult | SmtpError], where: str) -> None:
    by_content = {item.content: index for index, item in enumerate(batch)}
    delivered_count = [0] * len(batch)
    for delivered in server.delivered:
        assert delivered.content in by_content, f"{where}: a mixed or altered message arrived"
        index = by_content[delivered.content]
        delivered_count[index] += 1
        assert delivered.sender == batch[index].sender, where
        assert set(delivered.recipients) <= set(batch[index].recipients), where
    for index, count in enumerate(delivered_count):
        assert count <= 1, f"{where}: message {index} delivered {count} times"
        outcome = outcomes.get(index)
        if isinstance(outcome, SendResult):
            assert count == 1, f"{where}: message {index} reported sent, not delivered"
            (delivered,) = [d for d in server.delivered if d.content == batch[index].content]
            assert set(outcome.accepted) == set(delivered.recipients), where
        elif isinstance(outcome, DeliveryUnknownError):
            pass
        elif outcome is not None:
            assert count == 0, (f"{where}: message {index} reported {outcome!r} but "
                                "was delivered")


def check_recovery(server: MemoryServer, transport: MemoryTransport, runner: SyncRunner,
                   where: str) -> None:
    """The same client goes on: a new message arrives alone and whole."""
    transport.fault = None
    before = len(server.delivered)
    fresh = message(9, ("fresh@memory.test",), 300)
    result = runner.send(runner.core.ticket(Outgoing(fresh.content, fresh.sender,
                                                     fresh.recipients)))
    assert result.accepted == ("fresh@memory.test",), where
    assert server.delivered[before:] == [
        server.delivered[before].__class__(fresh.sender, fresh.recipients, fresh.content)
    ], f"{where}: the next message was not delivered alone and whole"
    session = runner.core.session
    assert session is not None and session.state.phase is Phase.READY, where


STREAMED_SIZE = 80_000
"""Above the size framed whole (so the message streams), in several pieces of ``PIECE``."""
PIECE = 16 * 1024
STREAMED_BEHAVIOURS = ("accepting", "rejects at end, keeps it open", "421 at a recipient")
"""Streamed (large) messages are run against fewer behaviours, to keep the table fast."""
CASES = [
    pytest.param(extensions, behaviour, way, size, id=f"{label}-{behaviour}-{extensions}-{way}")
    for label, size in (("small", 400), ("streamed", STREAMED_SIZE))
    for behaviour in sorted(SERVERS)
    if size < 1000 or behaviour in STREAMED_BEHAVIOURS
    for extensions in sorted(EXTENSIONS)
    for way in WAYS
]


@pytest.mark.parametrize(("extensions", "behaviour", "way", "size"), CASES)
def test_every_step_interrupted(extensions: str, behaviour: str, way: str, size: int,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "WRITE_BUFFER", PIECE)
    batch = messages(size)
    template = MemoryServer(extensions=EXTENSIONS[extensions], **SERVERS[behaviour])

    clean_server = replace(template, delivered=[])
    clean = MemoryTransport(clean_server)
    outcomes, runner, interrupted = run(clean_server, clean, way, batch)
    assert not interrupted
    assert len(outcomes) == len(batch)
    check(clean_server, batch, outcomes, f"clean run of {behaviour}")
    check_recovery(clean_server, clean, runner, "after the clean run")
    steps = clean.steps

    for step, kind in itertools.product(range(steps + 2), FAULTS):
        server = replace(template, delivered=[])
        transport = MemoryTransport(server, Fault(step, kind))
        where = f"{behaviour}, {extensions}, {way}: {kind} at step {step}"
        outcomes, runner, interrupted = run(server, transport, way, batch)
        check(server, batch, outcomes, where)
        if not interrupted and way != "send":
            assert len(outcomes) == len(batch), f"{where}: a message got no outcome"
        check_recovery(server, transport, runner, where)


def test_the_table_covers_an_interruption_in_the_middle_of_message_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The table's clean run of a streamed message has steps between its first and its last
    data write: interruptions land in the middle of the data, not only between commands."""
    monkeypatch.setattr(pipeline, "WRITE_BUFFER", PIECE)
    server = MemoryServer(extensions=EXTENSIONS["pipelining"])
    transport = MemoryTransport(server)
    batch = messages(STREAMED_SIZE)[:1]
    writes: list[int] = []
    original = transport.send

    def recording(data: bytes, phase: str, timeout: float) -> None:
        writes.append(transport.steps)
        original(data, phase, timeout)

    transport.send = recording  # type: ignore[method-assign]
    outcomes, _runner, _ = run(server, transport, "send", batch)
    assert isinstance(outcomes[0], SendResult)
    assert len(writes) >= 4, "the streamed message should take several writes"

    middle = writes[-2]
    for kind in FAULTS:
        server = MemoryServer(extensions=EXTENSIONS["pipelining"])
        transport = MemoryTransport(server, Fault(middle, kind))
        outcomes, runner, interrupted = run(server, transport, "send", batch)
        assert server.delivered == [], f"{kind}: a message cut short must not be delivered"
        assert interrupted or not isinstance(outcomes[0], SendResult)
        check_recovery(server, transport, runner, f"{kind} in the middle of the data")


BYTE_CASES = [
    pytest.param(extensions, behaviour, way, id=f"{behaviour}-{extensions}-{way}")
    for behaviour in ("accepting", "rejects at end, keeps it open")
    for extensions in sorted(EXTENSIONS)
    for way in ("send", "send_many")
]


@pytest.mark.parametrize(("extensions", "behaviour", "way"), BYTE_CASES)
def test_the_connection_lost_at_every_byte_of_every_write(extensions: str, behaviour: str,
                                                          way: str) -> None:
    """The connection lost after each byte of each write (the server got exactly that much):
    every message's outcome is true to what the server has, and the client goes on."""
    batch = messages(400)
    template = MemoryServer(extensions=EXTENSIONS[extensions], **SERVERS[behaviour])
    clean_server = replace(template, delivered=[])
    clean = MemoryTransport(clean_server)
    writes: list[tuple[int, int]] = []
    original = clean.send

    def recording(data: bytes, phase: str, timeout: float) -> None:
        writes.append((clean.steps, len(data)))
        original(data, phase, timeout)

    clean.send = recording  # type: ignore[method-assign]
    run(clean_server, clean, way, batch)
    assert sum(length for _, length in writes) > 3 * 400, "every message should be written"

    for step, length in writes:
        for cut in range(length + 1):
            server = replace(template, delivered=[])
            transport = MemoryTransport(server, Fault(step, "drop", cut=cut))
            where = f"{behaviour}, {extensions}, {way}: lost after byte {cut} of step {step}"
            outcomes, runner, _ = run(server, transport, way, batch)
            check(server, batch, outcomes, where)
            if way != "send":
                assert len(outcomes) == len(batch), f"{where}: a message got no outcome"
            check_recovery(server, transport, runner, where)


class TricklingTransport(MemoryTransport):
    """Hands the client one reply line per read, and records, at every read, how many
    messages the client had written and how many final verdicts it had been given."""

    def __init__(self, server: MemoryServer) -> None:
        super().__init__(server)
        self.written = 0
        self.verdicts = 0
        self.at_reads: list[tuple[int, int]] = []

    def send(self, data: bytes, phase: str, timeout: float) -> None:
        self.written += data.count(b"MAIL FROM:")
        super().send(data, phase, timeout)

    def receive(self, phase: str, timeout: float) -> bytes:
        connection = self._require()
        if not connection.output:
            return super().receive(phase, timeout)
        self.at_reads.append((self.written, self.verdicts))
        line = bytes(connection.output[:connection.output.index(b"\n") + 1])
        del connection.output[:len(line)]
        self.verdicts += line.startswith(b"250 2.0.0 Ok: queued")
        return line


@pytest.mark.parametrize("window", [1, 4])
def test_a_window_refills_as_soon_as_a_message_is_answered(window: int) -> None:
    """With ``max_in_flight=N``, the client waits for the server only with N messages
    unanswered (until none is left to write): a message answered in a read makes room for
    the next one before the client reads again, even though its outcome is worked out
    after that write."""
    server = MemoryServer()
    transport = TricklingTransport(server)
    batch = [message(number, (f"r{number}@memory.test",), 500) for number in range(10)]
    core = ClientCore(lambda: SETTINGS)
    runner = SyncRunner(core, transport)  # type: ignore[arg-type]
    results: deque[BulkResult] = deque()
    feed = BulkFeed([Outgoing(item.content, item.sender, item.recipients) for item in batch],
                    BulkOptions(max_in_flight=window), results.append)
    outcomes = [result.sent for result in runner.drain(feed, results)]
    assert outcomes == [True] * len(batch)
    assert [delivered.content for delivered in server.delivered] == [m.content for m in batch]
    reads_before_the_last_write = [(written, verdicts) for written, verdicts in transport.at_reads
                                   if 0 < written < len(batch)]
    assert reads_before_the_last_write
    assert all(written - verdicts == window for written, verdicts in reads_before_the_last_write)
