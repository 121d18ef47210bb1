"""The connection engine's promises over real sockets, on both clients: the reproductions that
broke them before (cancellation splicing messages, clients shared by threads and tasks, bulk BDAT
sent twice, unbounded memory and handshakes, BDAT refusals lost, a protocol trace that lied).

See SECURITY.md, "Interruption and sharing" and the README's "What mailwire promises when
things go wrong".
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from mailwire import (
    AsyncSmtpClient,
    DataRefusedError,
    DeliveryUnknownError,
    Outgoing,
    SecurityOptions,
    SmtpClient,
    SmtpTimeoutError,
)
from mailwire.devserver import DevServer
from tests.support.chaos import RawServer
from tests.support.clients import ClientFactory
from tests.support.postfix import PostfixServer, as_stored
from tests.support.scripted import (
    Close,
    Expect,
    ExpectBytes,
    Reply,
    ScriptedServerFactory,
    goodbye,
    greeting,
    handshake,
)

SENDER = "a@example.test"
CHUNK = b"x" * 998 + b"\r\n"


def message_to(recipient: str, subject: str, body: bytes = b"hello\r\n") -> bytes:
    return (f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: {subject}\r\n\r\n").encode() + body


@pytest.fixture
def postfix(postfix_server: PostfixServer) -> PostfixServer:
    postfix_server.clear()
    return postfix_server


@pytest.fixture(scope="module")
def small_postfix(postfix_factory: Callable[..., PostfixServer]) -> PostfixServer:
    """A Postfix that takes messages of up to 100 kB."""
    return postfix_factory(message_size_limit=100_000)


@pytest.fixture(scope="module")
def postfix_without_chunking(postfix_factory: Callable[..., PostfixServer]) -> PostfixServer:
    return postfix_factory(main_cf={"smtpd_discard_ehlo_keywords": "chunking"})


def only_deliveries(postfix: PostfixServer, expected: dict[str, bytes]) -> None:
    """Postfix delivered exactly ``expected`` (recipient -> the message as sent), each once."""
    delivered = postfix.messages(count=len(expected))
    time.sleep(0.3)  # anything spliced or duplicated would arrive with the rest
    delivered = postfix.delivered()
    assert sorted(m.recipient for m in delivered) == sorted(expected)
    for item in delivered:
        assert item.content == as_stored(expected[item.recipient])


# -- 1. cancellation splices messages -----------------------------------------------------------


def test_a_cancelled_async_send_is_not_spliced_into_the_next(postfix: PostfixServer) -> None:
    """asyncio: a send cancelled in the middle of its data, then send_many on the same client
    (CHUNKING and PIPELINING): only the later messages arrive, each alone and whole."""
    second = message_to("second@example.test", "second")
    third = message_to("third@example.test", "third")

    async def scenario() -> list[bool]:
        started = asyncio.Event()

        def slow_body() -> Iterator[bytes]:
            yield message_to("first@example.test", "first", b"")
            for _ in range(7000):  # 7 MB
                started.set()
                yield CHUNK

        async with AsyncSmtpClient(postfix.host, postfix.port, security="none") as client:
            task = asyncio.create_task(client.send(slow_body()))
            await started.wait()
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return [result.sent async for result in client.send_many([second, third])]

    assert asyncio.run(scenario()) == [True, True]
    only_deliveries(postfix, {"second@example.test": second, "third@example.test": third})


def test_an_interrupt_kept_by_the_caller_is_not_spliced_into_the_next(
    postfix: PostfixServer,
) -> None:
    """The blocking client: KeyboardInterrupt from inside the message (as a signal would
    arrive), caught by the caller, then send_many on the same client."""
    second = message_to("second@example.test", "second")
    third = message_to("third@example.test", "third")

    def interrupted_body() -> Iterator[bytes]:
        yield message_to("first@example.test", "first", b"")
        for number in range(7000):
            if number == 3000:
                raise KeyboardInterrupt
            yield CHUNK

    with SmtpClient(postfix.host, postfix.port, security="none") as client:
        with pytest.raises(KeyboardInterrupt):
            client.send(interrupted_body())
        assert [result.sent for result in client.send_many([second, third])] == [True, True]
    only_deliveries(postfix, {"second@example.test": second, "third@example.test": third})


def test_a_cancelled_send_with_data_leaves_the_connection_for_the_next(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
) -> None:
    """DATA (no CHUNKING), cancelled while the server is slowly reading the data: the transfer
    cannot be cut short, so its connection goes without its end marker; the next send opens
    another connection and only its message arrives."""
    kept: list[bytes] = []
    ends: dict[int, bool] = {}
    count = itertools.count()

    def server(sock: socket.socket) -> None:
        number = next(count)
        reader = sock.makefile("rb")
        sock.sendall(b"220 slow.test ESMTP\r\n")
        for expected, reply in [(b"EHLO", b"250-slow.test\r\n250 PIPELINING\r\n"),
                                (b"MAIL", b"250 ok\r\n"), (b"RCPT", b"250 ok\r\n"),
                                (b"DATA", b"354 go\r\n")]:
            assert reader.readline().startswith(expected)
            sock.sendall(reply)
        data = bytearray()
        lines = 0
        while not data.endswith(b"\r\n.\r\n"):
            line = reader.readline()
            if not line:
                ends[number] = False
                return
            data += line
            lines += 1
            if b"slow" in data[:200] and lines < 2000:
                time.sleep(0.001)  # the client's writes fill the buffers and wait
        ends[number] = True
        kept.append(bytes(data))
        sock.sendall(b"250 queued\r\n")
        with contextlib.suppress(OSError):
            assert reader.readline().startswith(b"QUIT")
            sock.sendall(b"221 bye\r\n")

    raw = raw_server(server)
    after = message_to("after@example.test", "after")

    async def scenario() -> None:
        started = asyncio.Event()

        def slow_body() -> Iterator[bytes]:
            yield message_to("first@example.test", "slow", b"")
            for _ in range(20_000):
                started.set()
                yield CHUNK

        async with AsyncSmtpClient(raw.host, raw.port, security="none", timeout=10) as client:
            task = asyncio.create_task(client.send(slow_body()))
            await started.wait()
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not client.is_connected
            assert (await client.send(after)).accepted == ("after@example.test",)

    asyncio.run(scenario())
    deadline = time.monotonic() + 10
    while len(ends) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ends == {0: False, 1: True}, "the cancelled message must end without its end marker"
    assert kept == [after + b".\r\n"]


# -- 2. one client shared by threads and tasks -----------------------------------------------


def test_four_threads_share_one_blocking_client(smtp_server: Callable[..., DevServer]) -> None:
    server = smtp_server()
    client = SmtpClient(server.host, server.port, security="none", timeout=10)
    failures: list[BaseException] = []

    def sender(thread: int) -> None:
        try:
            for number in range(10):
                result = client.send(message_to(f"t{thread}n{number}@example.test",
                                                f"{thread}/{number}"))
                assert result.accepted == (f"t{thread}n{number}@example.test",)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=sender, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    client.quit()
    assert failures == []
    received = server.wait_for_messages(40)
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(
        f"t{t}n{n}@example.test" for t in range(4) for n in range(10))
    for item in received:
        thread, number = item.rcpt_tos[0].split("@")[0][1:].split("n")
        assert item.data == message_to(item.rcpt_tos[0], f"{thread}/{number}")


def test_twenty_tasks_share_one_async_client(postfix: PostfixServer) -> None:
    messages = {f"task{number}@example.test": message_to(f"task{number}@example.test",
                                                          f"task {number}")
                for number in range(20)}

    async def scenario() -> float:
        async with AsyncSmtpClient(postfix.host, postfix.port, security="none",
                                   timeout=100) as client:
            await client.connect()
            started = time.monotonic()
            results = await asyncio.gather(*(client.send(raw) for raw in messages.values()))
            elapsed = time.monotonic() - started
            assert [r.accepted for r in results] == [(to,) for to in messages]
            return elapsed

    elapsed = asyncio.run(scenario())
    assert elapsed < 10, "twenty sends should share the pipeline, not time out in turn"
    only_deliveries(postfix, messages)


def test_a_cancelled_task_does_not_disturb_the_others(postfix: PostfixServer) -> None:
    """Twenty tasks share a client; five are cancelled at once: the other fifteen are sent and
    delivered, each whole, and nothing of the cancelled ones is mixed into them."""
    messages = {f"task{number}@example.test": message_to(f"task{number}@example.test",
                                                          f"task {number}")
                for number in range(20)}

    async def scenario() -> dict[str, bool]:
        async with AsyncSmtpClient(postfix.host, postfix.port, security="none") as client:
            await client.connect()
            tasks = {to: asyncio.create_task(client.send(raw)) for to, raw in messages.items()}
            await asyncio.sleep(0)
            for to in list(messages)[::4]:
                tasks[to].cancel()
            outcome: dict[str, bool] = {}
            for to, task in tasks.items():
                try:
                    outcome[to] = (await task).accepted == (to,)
                except asyncio.CancelledError:
                    outcome[to] = False
            return outcome

    outcome = asyncio.run(scenario())
    sent = {to for to, ok in outcome.items() if ok}
    assert len(sent) >= 15
    time.sleep(0.5)
    delivered = postfix.delivered()
    delivered_to = [m.recipient for m in delivered]
    assert len(delivered_to) == len(set(delivered_to)), "delivered twice"
    assert sent <= set(delivered_to)
    for item in delivered:
        assert item.content == as_stored(messages[item.recipient])


# -- 3. at most once in bulk BDAT -------------------------------------------------------------


def test_bulk_bdat_dropped_after_the_last_chunk_is_unknown_not_resent(
    scripted_server: ScriptedServerFactory, make_client: ClientFactory,
) -> None:
    raw = message_to("b@example.test", "once")
    server = scripted_server(
        *handshake(["PIPELINING", "CHUNKING"]), Expect(b"MAIL FROM:"), Expect(b"RCPT TO:"),
        Expect(b"BDAT"), ExpectBytes(len(raw)), Close(),
        allow_errors=True,
    )
    client = make_client(server.host, server.port, security="none", timeout=5)
    (result,) = client.send_many([raw], retry_delay=0.01)
    client.quit()
    assert isinstance(result.error, DeliveryUnknownError)
    assert result.attempts == 1
    server.wait(connections=1)
    time.sleep(0.2)
    assert server.connection_count == 1, "the message was sent again"


# -- 4. bounded memory and time ---------------------------------------------------------------


def test_a_flooding_server_cannot_grow_the_async_client(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
) -> None:
    """The server floods the connection while the client sits idle and then while it writes a
    large message: the client's memory stays bounded (the transport stops reading)."""
    stop = threading.Event()

    def flood(sock: socket.socket) -> None:
        reader = sock.makefile("rb")
        sock.sendall(b"220 flood.test ESMTP\r\n")
        reader.readline()
        sock.sendall(b"250-flood.test\r\n250 PIPELINING\r\n")
        sock.settimeout(0.5)
        junk = b"250 flood\r\n" * 10_000
        deadline = time.monotonic() + 10
        with contextlib.suppress(OSError):
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    sock.sendall(junk)
                except TimeoutError:
                    continue

    server = raw_server(flood)

    big = message_to("b@flood.test", "big", CHUNK * 20_000)

    async def scenario() -> int:
        client = AsyncSmtpClient(server.host, server.port, security="none", timeout=3)
        await client.connect()
        tracemalloc.start()
        try:
            await asyncio.sleep(1.5)
            with contextlib.suppress(Exception):
                await client.send(big)
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            stop.set()
            await client.close()
        return peak

    peak = asyncio.run(scenario())
    assert peak < 16 * 1024 * 1024, f"the client grew by {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_a_dripping_proxy_is_bounded_by_the_timeout(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer], kind: str
) -> None:
    """A proxy that answers one byte at a time, each just inside the per-read timeout: the
    handshake as a whole ends at ``timeout`` on the blocking client."""
    reply = (b"HTTP/1.1 200 Connection established\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"
             if kind == "http" else b"\x05\x00" + b"\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x19")

    def drip(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.recv(4096)
            for byte in reply:
                sock.sendall(bytes([byte]))
                time.sleep(0.3)
                if kind == "socks5" and byte == 0x00 and reply.index(byte) == 1:
                    sock.recv(4096)

    server = raw_server(drip)
    client = SmtpClient("example.test", 25, security="none", timeout=1.0,
                        proxy=f"{'http' if kind == 'http' else 'socks5h'}://"
                              f"{server.host}:{server.port}")
    started = time.monotonic()
    with pytest.raises(SmtpTimeoutError):
        client.connect()
    assert time.monotonic() - started < 2.5


# -- 5. BDAT refusals -------------------------------------------------------------------------


@pytest.mark.parametrize("client_kind", ["sync", "async"])
def test_a_chunk_refused_for_size_stops_the_transfer_and_is_reported(
    small_postfix: PostfixServer, client_kind: str
) -> None:
    """A stream of unknown size, far over the server's limit: the server's 552 to a chunk is
    the error, the transfer stops soon after it (no further chunks, RFC 3030), and the
    connection goes on to the next message."""
    server = small_postfix
    server.clear()
    read = [0]

    def endless() -> Iterator[bytes]:
        yield message_to("big@example.test", "big", b"")
        for _ in range(200_000):  # 200 MB if it were all read
            read[0] += 1
            yield CHUNK

    after = message_to("after@example.test", "after")
    if client_kind == "sync":
        with SmtpClient(server.host, server.port, security="none", timeout=10) as client:
            with pytest.raises(DataRefusedError) as refused:
                client.send(endless())
            assert client.send(after).accepted == ("after@example.test",)
    else:
        async def scenario() -> pytest.ExceptionInfo[DataRefusedError]:
            async with AsyncSmtpClient(server.host, server.port, security="none",
                                       timeout=10) as client:
                with pytest.raises(DataRefusedError) as caught:
                    await client.send(endless())
                assert (await client.send(after)).accepted == ("after@example.test",)
                return caught
        refused = asyncio.run(scenario())
    assert refused.value.code == 552
    assert read[0] * len(CHUNK) < 8 * 1024 * 1024, "chunks kept going out after the 552"
    assert [m.recipient for m in server.messages(count=1)] == ["after@example.test"]


# -- 6. the protocol trace --------------------------------------------------------------------


def trace_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "mailwire.protocol"]


@pytest.mark.parametrize("chunking", [True, False])
def test_the_trace_shows_every_command_of_a_bulk_send(
    postfix: PostfixServer, postfix_without_chunking: PostfixServer,
    caplog: pytest.LogCaptureFixture, chunking: bool,
) -> None:
    server = postfix if chunking else postfix_without_chunking
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    messages = [Outgoing(message_to(f"u{n}@example.test", str(n)), SENDER,
                         [f"u{n}@example.test"]) for n in range(3)]
    with SmtpClient(server.host, server.port, security=SecurityOptions.NONE) as client:
        assert all(result.sent for result in client.send_many(messages))
    lines = trace_lines(caplog)
    for number in range(3):
        assert f"C: RCPT TO:<u{number}@example.test>" in lines
    sent = [line for line in lines if line.startswith("C: MAIL FROM:")]
    assert len(sent) == 3
    if chunking:
        assert len([line for line in lines if line.startswith("C: BDAT")]) == 3
    else:
        assert lines.count("C: DATA") == 3


def test_the_trace_shows_nothing_that_was_not_sent(
    scripted_server: ScriptedServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Without PIPELINING a refused MAIL ends the message: no RCPT or DATA line in the trace."""
    server = scripted_server(greeting(), Expect(b"EHLO"), Reply(250, "scripted.test"),
                             Expect(b"MAIL FROM:"), Reply(550, "5.7.1 not you"), *goodbye())
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    with SmtpClient(server.host, server.port, security="none") as client:
        (result,) = client.send_many([message_to("b@example.test", "refused")])
    assert result.error is not None and result.error.code == 550
    lines = trace_lines(caplog)
    assert any(line.startswith("C: MAIL FROM:") for line in lines)
    assert not any(line.startswith(("C: RCPT", "C: DATA")) for line in lines)
