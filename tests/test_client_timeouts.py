"""SmtpClient against a server that stops answering, in every phase.

A stall raises ``SmtpTimeoutError`` (a ``TimeoutError``) naming the phase, within its bound
(``greeting_timeout`` for the greeting, ``timeout`` for everything else); a stall or a drop after
the end of the data is ``DeliveryUnknownError``, never a success and never a silent resend.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mailwire import (
    DeliveryUnknownError,
    SecurityOptions,
    SmtpClient,
    SmtpConnectionError,
    SmtpTimeoutError,
)
from mailwire.devserver import Certificates
from tests.support.scripted import (
    Close,
    Expect,
    ExpectData,
    Reply,
    ScriptedServer,
    ScriptedServerFactory,
    Send,
    Stall,
    StallHandshake,
    Step,
    ehlo_reply,
    goodbye,
    greeting,
    handshake,
)

MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n"
TIMEOUT = 0.4
GREETING_TIMEOUT = 0.3
SLACK = 1.0  # scheduling slack for a loaded CI machine
STALL = 5.0  # how long the server stays silent: far beyond every bound under test


def client(
    server: ScriptedServer, security: SecurityOptions = SecurityOptions.NONE, **options: Any
) -> SmtpClient:
    options.setdefault("timeout", TIMEOUT)
    options.setdefault("greeting_timeout", GREETING_TIMEOUT)
    return SmtpClient(server.host, server.port, security=security, **options)


def timed(action: Callable[[], object]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        action()
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize(
    "mode", [SecurityOptions.NONE, SecurityOptions.SSL_EXPLICIT], ids=lambda m: m.name
)
def test_a_server_that_never_greets(
    scripted_server: ScriptedServerFactory, mode: SecurityOptions
) -> None:
    server = scripted_server(Stall(STALL))
    smtp = client(server, mode, timeout=30.0)
    error, elapsed = timed(smtp.connect)
    assert isinstance(error, SmtpTimeoutError)
    assert isinstance(error, TimeoutError)
    assert error.phase == "greeting"
    assert "greeting" in str(error)
    assert GREETING_TIMEOUT * 0.9 <= elapsed < GREETING_TIMEOUT + SLACK
    assert not smtp.is_connected


def test_connect_timeout(unused_listener: tuple[str, int]) -> None:
    host, port = unused_listener
    smtp = SmtpClient(
        host, port, security=SecurityOptions.NONE, timeout=TIMEOUT, greeting_timeout=30.0
    )
    error, elapsed = timed(smtp.connect)
    assert isinstance(error, SmtpTimeoutError)
    assert error.phase == "connect"
    assert elapsed < TIMEOUT + SLACK


@pytest.fixture
def unused_listener() -> Iterator[tuple[str, int]]:
    """A listener whose accept queue is full: the kernel drops further SYNs, so connecting
    neither succeeds nor fails until the client's own timeout."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(8):
            filler = socket.socket()
            fillers.append(filler)
            filler.settimeout(0.2)
            try:
                filler.connect(address)
            except TimeoutError:
                break
        else:
            pytest.skip("this system never lets a connection attempt hang")
        yield address
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_greeting_that_stops_midway(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(Send(b"220-scripted.test first line\r\n220-second"), Stall(STALL))
    error, elapsed = timed(client(server, timeout=30.0).connect)
    assert isinstance(error, SmtpTimeoutError)
    assert error.phase == "greeting"
    assert elapsed < GREETING_TIMEOUT + SLACK


@pytest.mark.parametrize(
    "mode", [SecurityOptions.AUTO, SecurityOptions.SSL_AUTO], ids=lambda m: m.name
)
def test_auto_detection_against_a_server_that_never_speaks(
    scripted_server: ScriptedServerFactory, mode: SecurityOptions
) -> None:
    """Silence looks like implicit TLS; the handshake then stalls and is bounded by timeout."""
    server = scripted_server(Stall(STALL))
    error, elapsed = timed(client(server, mode).connect)
    assert isinstance(error, SmtpTimeoutError)
    assert error.phase == "TLS handshake"
    assert elapsed < GREETING_TIMEOUT + TIMEOUT + SLACK


def test_implicit_tls_handshake_stall_is_bounded_by_timeout(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(StallHandshake(STALL))
    smtp = client(server, SecurityOptions.SSL_IMPLICIT, greeting_timeout=30.0)
    error, elapsed = timed(smtp.connect)
    assert isinstance(error, SmtpTimeoutError)
    assert error.phase == "TLS handshake"
    assert elapsed < TIMEOUT + SLACK


def test_starttls_handshake_stall(
    scripted_server: ScriptedServerFactory, certificates: Certificates
) -> None:
    server = scripted_server(
        greeting(),
        Expect(b"EHLO"),
        ehlo_reply(["STARTTLS"]),
        Expect(b"STARTTLS"),
        Reply(220, "go ahead"),
        StallHandshake(STALL),
    )
    smtp = client(
        server,
        SecurityOptions.SSL_EXPLICIT,
        greeting_timeout=30.0,
        ssl_context=certificates.client_context(),
    )
    error, elapsed = timed(smtp.connect)
    assert isinstance(error, SmtpTimeoutError)
    assert error.phase == "TLS handshake"
    assert elapsed < TIMEOUT + SLACK


def _stall_after(steps: list[Step]) -> list[Step]:
    return [*steps, Stall(STALL)]


LOCKSTEP = handshake([])
STALLS: dict[str, tuple[list[Step], str]] = {
    "EHLO": ([greeting(), Expect(b"EHLO")], "EHLO"),
    "EHLO mid-reply": (
        [greeting(), Expect(b"EHLO"), Send(b"250-scripted.test\r\n250-SIZE")],
        "EHLO",
    ),
    "AUTH": ([*handshake(["AUTH PLAIN"]), Expect(b"AUTH PLAIN")], "AUTH"),
    "MAIL": ([*LOCKSTEP, Expect(b"MAIL FROM:")], "MAIL"),
    "MAIL pipelined": ([*handshake(["PIPELINING"]), Expect(b"MAIL FROM:")], "MAIL"),
    "RCPT": ([*LOCKSTEP, Expect(b"MAIL FROM:"), Reply(250, "ok"), Expect(b"RCPT TO:")], "RCPT"),
    "DATA": (
        [
            *LOCKSTEP,
            Expect(b"MAIL FROM:"),
            Reply(250, "ok"),
            Expect(b"RCPT TO:"),
            Reply(250, "ok"),
            Expect(b"DATA"),
        ],
        "DATA",
    ),
}


@pytest.mark.parametrize("where", list(STALLS))
def test_a_stall_before_the_data_is_a_timeout_naming_the_phase(
    scripted_server: ScriptedServerFactory, where: str
) -> None:
    steps, phase = STALLS[where]
    server = scripted_server(_stall_after(steps), repeat=False)
    credentials: dict[str, Any] = (
        {"username": "alice", "password": "secret"} if phase == "AUTH" else {}
    )
    smtp = client(server, allow_plaintext_credentials=True, greeting_timeout=30.0, **credentials)
    error, elapsed = timed(lambda: smtp.send(MESSAGE))
    assert isinstance(error, SmtpTimeoutError), repr(error)
    assert error.phase == phase
    assert error.seconds == TIMEOUT
    assert elapsed < TIMEOUT + SLACK
    assert not smtp.is_connected
    assert server.connection_count == 1


def _through_end_of_data(last: Step) -> list[Step]:
    return [
        *LOCKSTEP,
        Expect(b"MAIL FROM:"),
        Reply(250, "ok"),
        Expect(b"RCPT TO:"),
        Reply(250, "ok"),
        Expect(b"DATA"),
        Reply(354, "go ahead"),
        ExpectData(),
        last,
    ]


@pytest.mark.parametrize(
    "last",
    [Stall(STALL), Close(), Close(reset=True), Send(b"25")],
    ids=["stall", "close", "reset", "truncated reply"],
)
def test_no_verdict_after_the_end_of_data_is_delivery_unknown(
    scripted_server: ScriptedServerFactory, last: Step
) -> None:
    steps = _through_end_of_data(last)
    if isinstance(last, Send):
        steps.append(Stall(STALL))
    server = scripted_server(steps, repeat=False)
    smtp = client(server)
    error, elapsed = timed(lambda: smtp.send(MESSAGE))
    assert isinstance(error, DeliveryUnknownError), repr(error)
    assert isinstance(error, SmtpConnectionError)
    assert not isinstance(error, SmtpTimeoutError)
    assert elapsed < TIMEOUT + SLACK
    # Never resent behind the caller's back: that could deliver the message twice.
    assert server.connection_count == 1
    assert not smtp.is_connected


def test_data_timeout_cause_is_kept(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(_through_end_of_data(Stall(STALL)), repeat=False)
    error, _ = timed(lambda: client(server).send(MESSAGE))
    assert isinstance(error, DeliveryUnknownError)
    assert isinstance(error.__cause__, SmtpTimeoutError)


def test_noop_stall(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(*LOCKSTEP, Expect(b"NOOP"), Stall(STALL))
    smtp = client(server)
    smtp.connect()
    error, elapsed = timed(smtp.noop)
    assert isinstance(error, SmtpTimeoutError)
    assert error.phase == "NOOP"
    assert elapsed < TIMEOUT + SLACK


def test_quit_to_a_stalled_server_returns_within_timeout(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(*LOCKSTEP, Expect(b"QUIT"), Stall(STALL))
    smtp = client(server)
    smtp.connect()
    started = time.monotonic()
    smtp.quit()  # no error: the session is over either way
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert not smtp.is_connected


def test_timeouts_can_be_changed_between_connections(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server([Stall(STALL)], [*LOCKSTEP, *goodbye()])
    smtp = client(server, greeting_timeout=0.2)
    error, elapsed = timed(smtp.connect)
    assert isinstance(error, SmtpTimeoutError)
    assert elapsed < 0.2 + SLACK
    smtp.greeting_timeout = 5.0
    with smtp:
        assert smtp.connect().greeting.code == 220
    server.wait(connections=2)
