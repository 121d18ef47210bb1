"""Scripted raw-socket SMTP server for client tests against misbehaving peers.

This module owns :class:`ScriptedServer`, the step types it plays, a few
good-path script builders and the ``scripted_server`` pytest fixture. It exists
for what no real server produces: stalls, garbage, dropped or reset
connections, STARTTLS plaintext injection, byte-by-byte greetings, replies out
of count. Tests of well-behaved servers use aiosmtpd instead.

A script is a sequence of steps played in order on one connection::

    def test_client_survives(scripted_server: ScriptedServerFactory) -> None:
        server = scripted_server(
            *handshake(["PIPELINING"]),
            Expect(b"QUIT"),
            Reply(221, "bye"),
        )
        ...  # drive the client against server.host, server.port
        server.wait()
        assert server.connections[0].received[0].startswith(b"EHLO")

Passing steps directly gives one script, served to every connection. Passing
several sequences of steps gives one script per connection, in accept order;
a connection beyond the last script is an error. When a script runs out the
connection is closed gracefully. Everything that goes wrong is collected in
``server.errors``; the fixture fails the test at teardown if any were
collected, unless the server was created with ``allow_errors=True``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import pytest

__all__ = [
    "DEFAULT_TIMEOUT",
    "Close",
    "Expect",
    "ExpectBytes",
    "ExpectClose",
    "ExpectData",
    "Reply",
    "ReplyLines",
    "ScriptedConnection",
    "ScriptedServer",
    "ScriptedServerFactory",
    "Send",
    "SendSlowly",
    "Stall",
    "StallHandshake",
    "StartTls",
    "Step",
    "ehlo_reply",
    "goodbye",
    "greeting",
    "handshake",
    "mail_transaction",
    "scripted_server",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds any single blocking read or write may take before the script fails."""

_ACCEPT_POLL = 0.05
_DRAIN_SECONDS = 0.5
_JOIN_SECONDS = 5.0


@dataclass(frozen=True)
class Step:
    """Base class of every script step."""


@dataclass(frozen=True)
class Send(Step):
    """Send ``data`` as is."""

    data: bytes


@dataclass(frozen=True)
class SendSlowly(Step):
    """Send ``data`` one byte at a time, ``delay`` seconds apart."""

    data: bytes
    delay: float = 0.01


@dataclass(frozen=True)
class Reply(Step):
    """Send the single-line reply ``<code> <text>\\r\\n``."""

    code: int
    text: str = ""

    @property
    def data(self) -> bytes:
        line = f"{self.code} {self.text}" if self.text else str(self.code)
        return f"{line}\r\n".encode()


@dataclass(frozen=True)
class ReplyLines(Step):
    """Send a multi-line reply: ``<code>-<line>`` for all but the last line."""

    code: int
    lines: Sequence[str]

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError("ReplyLines needs at least one line")
        object.__setattr__(self, "lines", tuple(self.lines))

    @property
    def data(self) -> bytes:
        last = len(self.lines) - 1
        return b"".join(
            f"{self.code}{' ' if i == last else '-'}{line}\r\n".encode()
            for i, line in enumerate(self.lines)
        )


@dataclass(frozen=True)
class Expect(Step):
    """Read one CRLF-terminated line; it must start with ``prefix`` (any case).

    ``Expect(b"")`` accepts any line.
    """

    prefix: bytes = b""


@dataclass(frozen=True)
class ExpectData(Step):
    """Read a DATA body up to and including the ``\\r\\n.\\r\\n`` marker."""


@dataclass(frozen=True)
class ExpectBytes(Step):
    """Read exactly ``count`` bytes (a BDAT chunk)."""

    count: int


@dataclass(frozen=True)
class ExpectClose(Step):
    """Wait for the client to close the connection; ends the script.

    Anything the client sends first is recorded as one final chunk.
    """


@dataclass(frozen=True)
class Stall(Step):
    """Send nothing for ``seconds``, or until the client closes the connection.

    Bytes the client sends meanwhile are kept for the following steps. If the
    client closes the connection, the rest of the script is skipped quietly.
    """

    seconds: float = 30.0


@dataclass(frozen=True)
class StallHandshake(Step):
    """Take whatever the client sends (its ClientHello) and never answer.

    Lasts ``seconds`` or until the client closes the connection; the bytes
    received are recorded as one chunk. Put it first for an implicit-TLS stall.
    """

    seconds: float = 30.0


@dataclass(frozen=True)
class StartTls(Step):
    """Run a server-side TLS handshake and play the rest of the script over TLS.

    Uses ``context`` or else the server's ``ssl_context``. As the first step it
    gives implicit TLS. Bytes the client sent before the handshake (plaintext
    pipelined after STARTTLS) are recorded and fail the script.
    """

    context: ssl.SSLContext | None = None


@dataclass(frozen=True)
class Close(Step):
    """Close the connection; with ``reset=True`` abort it with a TCP RST."""

    reset: bool = False


_TERMINAL_STEPS = (Close, ExpectClose)


def greeting(text: str = "scripted.test ESMTP ready") -> Reply:
    """The 220 greeting."""
    return Reply(220, text)


def ehlo_reply(extensions: Iterable[str] = (), hostname: str = "scripted.test") -> ReplyLines:
    """A 250 EHLO reply advertising ``extensions`` (e.g. ``"SIZE 1000"``)."""
    return ReplyLines(250, [hostname, *extensions])


def handshake(extensions: Iterable[str] = ()) -> list[Step]:
    """Greeting, then an EHLO answered with ``extensions``."""
    return [greeting(), Expect(b"EHLO"), ehlo_reply(extensions)]


def mail_transaction(recipients: int = 1) -> list[Step]:
    """MAIL, ``recipients`` RCPTs and DATA, all accepted."""
    rcpts: list[Step] = []
    for _ in range(recipients):
        rcpts += [Expect(b"RCPT TO:"), Reply(250, "2.1.5 Ok")]
    return [
        Expect(b"MAIL FROM:"),
        Reply(250, "2.1.0 Ok"),
        *rcpts,
        Expect(b"DATA"),
        Reply(354, "End data with <CR><LF>.<CR><LF>"),
        ExpectData(),
        Reply(250, "2.0.0 Ok: queued"),
    ]


def goodbye() -> list[Step]:
    """QUIT answered with 221."""
    return [Expect(b"QUIT"), Reply(221, "2.0.0 Bye")]


class _ScriptError(Exception):
    """A script step failed.

    ``io`` failures (EOF, timeouts, socket errors) are expected when the
    server is being stopped and are then not reported; protocol failures
    always are.
    """

    def __init__(self, message: str, *, io: bool = True) -> None:
        super().__init__(message)
        self.io = io


def _line_end(buffer: bytearray) -> int:
    index = buffer.find(b"\r\n")
    return index + 2 if index >= 0 else -1


def _data_end(buffer: bytearray) -> int:
    if buffer.startswith(b".\r\n"):
        return 3
    index = buffer.find(b"\r\n.\r\n")
    return index + 5 if index >= 0 else -1


class ScriptedConnection:
    """One accepted connection: what it received and how its script went."""

    def __init__(
        self,
        server: ScriptedServer,
        index: int,
        sock: socket.socket,
        script: Sequence[Step] | None,
    ) -> None:
        self.index = index
        self._server = server
        self._lock = server._condition
        self._sock: socket.socket | None = sock
        self._script = script
        self._buffer = bytearray()
        self._received: list[bytes] = []
        self._errors: list[str] = []
        self._finished = False
        self._completed = False
        self._thread = threading.Thread(
            target=self._run, name=f"scripted-smtp-{server.port}-{index}", daemon=True
        )

    @property
    def received(self) -> list[bytes]:
        """Every line or chunk received so far, in order, terminators included."""
        with self._lock:
            return list(self._received)

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    @property
    def finished(self) -> bool:
        """The script has ended, one way or another, and the socket is closed."""
        with self._lock:
            return self._finished

    @property
    def completed(self) -> bool:
        """The script ran to its end (or the client left during a stall) without errors."""
        with self._lock:
            return self._completed

    def _start(self) -> None:
        self._thread.start()

    def _join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _abort(self) -> None:
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def _record(self, chunk: bytes) -> None:
        with self._lock:
            self._received.append(chunk)

    def _error(self, message: str) -> None:
        with self._lock:
            self._errors.append(message)

    @property
    def _stopping(self) -> bool:
        return self._server._stopping.is_set()

    def _current_sock(self) -> socket.socket:
        with self._lock:
            sock = self._sock
        if sock is None:
            raise _ScriptError("connection already closed")
        return sock

    def _run(self) -> None:
        graceful = True
        try:
            if self._script is None:
                raise _ScriptError(
                    f"unexpected connection #{self.index}: only "
                    f"{len(self._server._scripts)} script(s) given",
                    io=False,
                )
            self._current_sock().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for number, step in enumerate(self._script):
                try:
                    keep_going = self._play(step)
                except _ScriptError as exc:
                    raise _ScriptError(f"step {number} {step!r}: {exc}", io=exc.io) from exc
                except OSError as exc:
                    raise _ScriptError(f"step {number} {step!r}: {exc!r}") from exc
                if not keep_going:
                    graceful = False
                    break
            with self._lock:
                self._completed = True
        except _ScriptError as exc:
            if not (exc.io and self._stopping):
                self._error(str(exc))
        except Exception as exc:
            self._error(f"scripted server crashed: {exc!r}")
        finally:
            self._close(graceful=graceful and not self._stopping)
            with self._lock:
                self._finished = True
                self._lock.notify_all()

    def _play(self, step: Step) -> bool:
        """Play one step; False ends the script with the connection already gone."""
        match step:
            case Send() | Reply() | ReplyLines():
                self._send(step.data)
            case SendSlowly(data=data, delay=delay):
                self._send_slowly(data, delay)
            case Expect(prefix=prefix):
                line = self._take(_line_end, f"a line starting with {prefix!r}")
                if line[: len(prefix)].lower() != prefix.lower():
                    raise _ScriptError(f"got {line!r}", io=False)
            case ExpectData():
                self._take(_data_end, "the end-of-data marker")
            case ExpectBytes(count=count):
                self._take(lambda buffer: count if len(buffer) >= count else -1, f"{count} bytes")
            case ExpectClose():
                self._expect_close()
                return False
            case Stall(seconds=seconds):
                return self._stall(seconds)
            case StallHandshake(seconds=seconds):
                still_open = self._stall(seconds)
                self._record_leftover()
                return still_open
            case StartTls(context=context):
                self._start_tls(context or self._server.ssl_context)
            case Close(reset=reset):
                self._close(graceful=False, reset=reset)
                return False
            case _:
                raise _ScriptError(f"unknown step type {type(step).__name__}", io=False)
        return True

    def _send(self, data: bytes) -> None:
        sock = self._current_sock()
        sock.settimeout(self._server.timeout)
        sock.sendall(data)

    def _send_slowly(self, data: bytes, delay: float) -> None:
        for index in range(len(data)):
            if index and self._server._stopping.wait(delay):
                raise _ScriptError("server stopped")
            self._send(data[index : index + 1])

    def _recv(self, deadline: float) -> bytes:
        """Read once into the buffer, raising TimeoutError past ``deadline``."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock = self._current_sock()
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        self._buffer += chunk
        return chunk

    def _take(self, find_end: Callable[[bytearray], int], what: str) -> bytes:
        timeout = self._server.timeout
        deadline = time.monotonic() + timeout
        while (end := find_end(self._buffer)) < 0:
            try:
                chunk = self._recv(deadline)
            except TimeoutError:
                raise _ScriptError(f"timed out after {timeout}s waiting for {what}") from None
            except OSError as exc:
                raise _ScriptError(f"{exc!r} while waiting for {what}") from exc
            if not chunk:
                raise _ScriptError(f"client closed the connection while waiting for {what}")
        chunk = bytes(self._buffer[:end])
        del self._buffer[:end]
        self._record(chunk)
        return chunk

    def _expect_close(self) -> None:
        timeout = self._server.timeout
        deadline = time.monotonic() + timeout
        try:
            while self._recv(deadline):
                pass
        except TimeoutError:
            raise _ScriptError(f"client did not close the connection within {timeout}s") from None
        except OSError:
            pass

    def _stall(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        try:
            while self._recv(deadline):
                pass
        except TimeoutError:
            return True
        except OSError:
            return False
        return False

    def _start_tls(self, context: ssl.SSLContext | None) -> None:
        if context is None:
            raise _ScriptError("StartTls needs an ssl_context", io=False)
        if self._buffer:
            early = self._record_leftover()
            raise _ScriptError(f"client sent {early!r} before the TLS handshake", io=False)
        raw = self._current_sock()
        raw.settimeout(self._server.timeout)
        tls = context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self._sock = tls
        if self._stopping:
            raise _ScriptError("server stopped")
        try:
            tls.do_handshake()
        except OSError as exc:
            raise _ScriptError(f"TLS handshake failed: {exc!r}") from exc

    def _record_leftover(self) -> bytes:
        leftover = bytes(self._buffer)
        self._buffer.clear()
        if leftover:
            self._record(leftover)
        return leftover

    def _close(self, *, graceful: bool, reset: bool = False) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif graceful:
                self._drain(sock)
        except OSError:
            pass
        finally:
            sock.close()
            self._record_leftover()

    def _drain(self, sock: socket.socket) -> None:
        """Half-close, then read until the client closes, so close() sends no RST."""
        sock.settimeout(_DRAIN_SECONDS)
        if isinstance(sock, ssl.SSLSocket):
            sock.unwrap()
            return
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + _DRAIN_SECONDS
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                return
            self._buffer += chunk


class ScriptedServer:
    """A raw-socket server on 127.0.0.1 playing scripts, one thread per connection.

    ``ScriptedServer(step, step, ...)`` plays one script on every connection;
    ``ScriptedServer([steps], [steps], ...)`` plays one script per connection
    in accept order. ``repeat`` overrides that choice: ``repeat=False`` with a
    single script makes any second connection an error, ``repeat=True`` with
    several cycles through them.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *scripts: Step | Sequence[Step],
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        repeat: bool | None = None,
    ) -> None:
        self._scripts = _normalise(scripts)
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.repeat = len(self._scripts) == 1 if repeat is None else repeat
        for script in self._scripts:
            _validate(script, ssl_context)
        self._condition = threading.Condition()
        self._connections: list[ScriptedConnection] = []
        self._stopping = threading.Event()
        self._listener = socket.create_server((self.host, 0), backlog=16)
        self._listener.settimeout(_ACCEPT_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"scripted-smtp-{self.port}", daemon=True
        )

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def connections(self) -> list[ScriptedConnection]:
        with self._condition:
            return list(self._connections)

    @property
    def connection_count(self) -> int:
        with self._condition:
            return len(self._connections)

    @property
    def received(self) -> list[bytes]:
        """Everything received, connection after connection."""
        return [chunk for connection in self.connections for chunk in connection.received]

    @property
    def errors(self) -> list[str]:
        return [
            f"connection {connection.index}: {error}"
            for connection in self.connections
            for error in connection.errors
        ]

    def start(self) -> None:
        self._accept_thread.start()

    def stop(self) -> None:
        """Close the listener and every connection, and wait for all threads."""
        self._stopping.set()
        if self._accept_thread.is_alive():
            self._accept_thread.join(_JOIN_SECONDS)
        self._listener.close()
        connections = self.connections
        for connection in connections:
            connection._abort()
        for connection in connections:
            connection._join(_JOIN_SECONDS)

    def wait(self, timeout: float = 5.0, connections: int | None = None) -> None:
        """Wait until ``connections`` connections have been accepted and finished.

        ``connections`` defaults to the number of scripts, or 1 when repeating.
        Raises TimeoutError, describing the state, if that takes too long.
        """
        wanted = (
            connections if connections is not None else (1 if self.repeat else len(self._scripts))
        )

        def done() -> bool:
            return len(self._connections) >= wanted and all(c._finished for c in self._connections)

        with self._condition:
            if self._condition.wait_for(done, timeout):
                return
            states = [
                f"#{c.index}: {'finished' if c._finished else 'running'}, received {c._received!r}"
                for c in self._connections
            ]
        raise TimeoutError(
            f"scripted server: wanted {wanted} finished connection(s) within {timeout}s; "
            f"have {len(states)}: {states} errors: {self.errors}"
        )

    def _script_for(self, index: int) -> Sequence[Step] | None:
        if self.repeat:
            return self._scripts[index % len(self._scripts)]
        return self._scripts[index] if index < len(self._scripts) else None

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._stopping.is_set():
                sock.close()
                return
            with self._condition:
                index = len(self._connections)
                connection = ScriptedConnection(self, index, sock, self._script_for(index))
                self._connections.append(connection)
                self._condition.notify_all()
            connection._start()


def _normalise(scripts: Sequence[Step | Sequence[Step]]) -> list[tuple[Step, ...]]:
    if not scripts:
        raise ValueError("ScriptedServer needs a script")
    if all(isinstance(item, Step) for item in scripts):
        return [tuple(item for item in scripts if isinstance(item, Step))]
    if any(isinstance(item, Step) for item in scripts):
        raise TypeError("pass either steps (one script) or sequences of steps, not both")
    normalised = [tuple(item) for item in scripts if not isinstance(item, Step)]
    for script in normalised:
        for step in script:
            if not isinstance(step, Step):
                raise TypeError(f"not a script step: {step!r}")
    return normalised


def _validate(script: Sequence[Step], ssl_context: ssl.SSLContext | None) -> None:
    for number, step in enumerate(script):
        if isinstance(step, _TERMINAL_STEPS) and number != len(script) - 1:
            raise ValueError(f"{step!r} must be the last step of its script")
        if isinstance(step, StartTls) and step.context is None and ssl_context is None:
            raise ValueError("StartTls needs an ssl_context, on the step or the server")


class ScriptedServerFactory(Protocol):
    """The type of the ``scripted_server`` fixture."""

    def __call__(
        self,
        *scripts: Step | Sequence[Step],
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        repeat: bool | None = None,
        allow_errors: bool = False,
    ) -> ScriptedServer: ...


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServerFactory]:
    """Start scripted servers for the test; stop them after it and report their errors.

    Pass ``allow_errors=True`` for a server whose errors the test inspects itself.
    """
    started: list[tuple[ScriptedServer, bool]] = []

    def factory(
        *scripts: Step | Sequence[Step],
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        repeat: bool | None = None,
        allow_errors: bool = False,
    ) -> ScriptedServer:
        server = ScriptedServer(*scripts, ssl_context=ssl_context, timeout=timeout, repeat=repeat)
        server.start()
        started.append((server, allow_errors))
        return server

    yield factory
    for server, _ in started:
        server.stop()
    unexpected = [
        f"{server.host}:{server.port} {error}"
        for server, allowed in started
        if not allowed
        for error in server.errors
    ]
    if unexpected:
        pytest.fail("scripted server errors:\n" + "\n".join(unexpected), pytrace=False)
