"""Both ends of an SMTP conversation in memory, for tests of the connection engine without
sockets (in the manner of h11's ``ConnectionPair``).

``MemoryServer`` is a small sans-I/O SMTP server: it takes the client's bytes in any split,
answers pipelined commands in order, takes DATA (dot-stuffed) and BDAT (exact counts), and
records every message it accepts, whole, with its envelope. What it refuses is set per address
(``refuse_mail``, ``refuse_rcpt``, ``reject_data``, ``tempfail_data``, ``close_at``), and
``keep_failed_transaction`` makes it behave as Postfix does after refusing a message at its
end of data (the next MAIL gets "503 nested MAIL command").

``MemoryTransport`` stands where ``transport.sync_connection.SyncConnection`` stands, so the real
``SyncRunner`` and ``ClientCore`` drive it. Every operation is a numbered step, and a ``Fault``
can strike at any step: an exception that is not the server's doing (``Interrupted``, as
KeyboardInterrupt or a cancellation would be), a connection lost in the middle of a write (part
of the bytes reach the server), or a connection lost right after a write (all of it reached the
server, none of the replies come back). A read that would block forever (the client waits for a
reply the server will never send) is a timeout, as it would be on a socket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mailwire.errors import ConnectionLostError, SmtpTimeoutError
from mailwire.transport.details import TlsDetails, TransportDetails

_ADDRESS = re.compile(rb"<([^>]*)>")


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt or a cancellation arriving at a given step."""


@dataclass(frozen=True)
class Delivered:
    sender: str
    recipients: tuple[str, ...]
    content: bytes


@dataclass(frozen=True)
class Fault:
    """What happens at step ``step``: ``interrupt``, ``drop`` (mid-write or instead of a
    read), ``drop_after`` (after a write is taken whole, before any reply returns)."""

    step: int
    kind: str
    offset: float = 0.5
    cut: int | None = None
    """For ``drop`` at a write: how many bytes reach the server (else ``offset`` of them)."""


@dataclass
class MemoryServer:
    extensions: tuple[str, ...] = ("PIPELINING", "CHUNKING", "8BITMIME", "SIZE 100000000")
    refuse_mail: frozenset[str] = frozenset()
    refuse_rcpt: frozenset[str] = frozenset()
    reject_data: frozenset[str] = frozenset()
    tempfail_data: frozenset[str] = frozenset()
    close_at: frozenset[str] = frozenset()
    """A 421 to RCPT of these addresses, then the connection closes."""
    keep_failed_transaction: bool = False
    delivered: list[Delivered] = field(default_factory=list)
    connections: int = 0

    def connect(self) -> ServerConnection:
        self.connections += 1
        return ServerConnection(self)


class ServerConnection:
    """One connection's server side: bytes in, replies out."""

    def __init__(self, server: MemoryServer) -> None:
        self.server = server
        self.output = bytearray(b"220 memory.test ESMTP\r\n")
        self.closed = False
        self._input = bytearray()
        self._mode = "command"
        self._bdat_left = 0
        self._bdat_last = False
        self._bdat_failed = False
        self._data = bytearray()
        self._reset()

    def _reset(self) -> None:
        self.sender: str | None = None
        self.recipients: list[str] = []
        self._data = bytearray()
        self._bdat_failed = False

    def receive(self, data: bytes) -> None:
        if self.closed:
            return
        self._input += data
        while not self.closed and self._step():
            pass

    def lose(self) -> None:
        """The connection is gone: a message that did not end is not delivered."""
        self.closed = True

    def _reply(self, line: str) -> None:
        self.output += line.encode() + b"\r\n"

    def _step(self) -> bool:
        if self._mode == "data":
            return self._take_data()
        if self._mode == "bdat":
            return self._take_chunk()
        end = self._input.find(b"\r\n")
        if end < 0:
            return False
        line = bytes(self._input[:end])
        del self._input[: end + 2]
        self._command(line)
        return True

    def _command(self, line: bytes) -> None:
        verb = line.split(b" ", 1)[0].upper()
        server = self.server
        if verb in (b"EHLO", b"HELO"):
            self._reset()
            lines = ["memory.test", *server.extensions]
            for text in lines[:-1]:
                self._reply(f"250-{text}")
            self._reply(f"250 {lines[-1]}")
        elif verb == b"MAIL":
            if self.sender is not None:
                self._reply("503 5.5.1 Error: nested MAIL command")
                return
            sender = _address(line)
            if sender in server.refuse_mail:
                self._reply("550 5.1.0 sender refused")
                return
            self.sender = sender
            self._reply("250 2.1.0 Ok")
        elif verb == b"RCPT":
            recipient = _address(line)
            if self.sender is None:
                self._reply("503 5.5.1 Error: need MAIL command")
            elif recipient in server.close_at:
                self._reply("421 4.3.2 closing")
                self.closed = True
            elif recipient in server.refuse_rcpt:
                self._reply("550 5.1.1 recipient refused")
            else:
                self.recipients.append(recipient)
                self._reply("250 2.1.5 Ok")
        elif verb == b"DATA":
            if not self.recipients:
                self._reply("554 5.5.1 Error: no valid recipients")
                return
            self._mode = "data"
            self._data = bytearray()
            self._reply("354 go ahead")
        elif verb == b"BDAT":
            parts = line.split()
            self._bdat_left = int(parts[1])
            self._bdat_last = len(parts) > 2 and parts[2].upper() == b"LAST"
            self._bdat_failed = self._bdat_failed or not self.recipients
            self._mode = "bdat"
        elif verb == b"RSET":
            self._reset()
            self._reply("250 2.0.0 Ok")
        elif verb == b"NOOP":
            self._reply("250 2.0.0 Ok")
        elif verb == b"QUIT":
            self._reply("221 2.0.0 Bye")
            self.closed = True
        else:
            self._reply("502 5.5.2 Error: command not recognized")

    def _take_data(self) -> bool:
        start = max(0, len(self._data) - 4)
        self._data += self._input
        self._input.clear()
        content = bytes(self._data)
        if content.startswith(b".\r\n"):
            end, rest = 0, content[3:]
        else:
            found = content.find(b"\r\n.\r\n", start)
            if found < 0:
                return False
            end, rest = found + 2, content[found + 5:]
        self._input[:0] = rest
        self._mode = "command"
        stuffed = content[:end]
        unstuffed = (stuffed[1:] if stuffed.startswith(b".") else stuffed).replace(b"\r\n.",
                                                                                    b"\r\n")
        self._verdict(unstuffed)
        return True

    def _take_chunk(self) -> bool:
        if len(self._input) < self._bdat_left:
            self._data += self._input
            self._bdat_left -= len(self._input)
            self._input.clear()
            return False
        self._data += self._input[: self._bdat_left]
        del self._input[: self._bdat_left]
        self._mode = "command"
        if self._bdat_failed:
            self._reply("554 5.5.1 Error: no valid recipients")
            if self._bdat_last:
                self._reset_after_failure()
            return True
        if not self._bdat_last:
            self._reply(f"250 2.0.0 Ok: {len(self._data)} octets")
            return True
        self._verdict(bytes(self._data))
        return True

    def _verdict(self, content: bytes) -> None:
        server = self.server
        if any(recipient in server.reject_data for recipient in self.recipients):
            self._reply("550 5.7.1 message rejected")
            self._reset_after_failure()
        elif any(recipient in server.tempfail_data for recipient in self.recipients):
            self._reply("451 4.3.0 try again later")
            self._reset_after_failure()
        else:
            assert self.sender is not None
            server.delivered.append(Delivered(self.sender, tuple(self.recipients), content))
            self._reply("250 2.0.0 Ok: queued")
            self._reset()

    def _reset_after_failure(self) -> None:
        if self.server.keep_failed_transaction:
            self._data = bytearray()
            self._bdat_failed = False
        else:
            self._reset()


def _address(line: bytes) -> str:
    match = _ADDRESS.search(line)
    return match.group(1).decode() if match else ""


class MemoryTransport:
    """A ``SyncConnection`` stand-in over a ``MemoryServer``, with faults at numbered steps."""

    def __init__(self, server: MemoryServer, fault: Fault | None = None) -> None:
        self.server = server
        self.fault = fault
        self.steps = 0
        self.connection: ServerConnection | None = None
        self.log: list[str] = []

    def _next_step(self) -> Fault | None:
        step = self.steps
        self.steps += 1
        fault = self.fault
        if fault is not None and fault.step == step:
            if fault.kind == "interrupt":
                raise Interrupted(f"interrupted at step {step}")
            return fault
        return None

    def _lost(self, phase: str) -> ConnectionLostError:
        if self.connection is not None:
            self.connection.lose()
        return ConnectionLostError(f"the connection to memory.test:25 was reset during {phase}")

    # -- what SyncConnection offers --------------------------------------------------------------

    def open(self, endpoint: Any, *, tls: bool, timeout: float) -> TransportDetails:
        fault = self._next_step()
        self.connection = self.server.connect()
        self.log.append("open")
        if fault is not None:
            raise self._lost("connect")
        return self._details(tls)

    def start_tls(self, *, timeout: float) -> TransportDetails:
        fault = self._next_step()
        if fault is not None:
            raise self._lost("TLS handshake")
        return self._details(True)

    def send(self, data: bytes, phase: str, timeout: float) -> None:
        fault = self._next_step()
        connection = self._require()
        if connection.closed:
            raise self._lost(phase)
        if fault is not None and fault.kind == "drop":
            keep = fault.cut if fault.cut is not None else int(len(data) * fault.offset)
            connection.receive(data[:keep])
            raise self._lost(phase)
        connection.receive(data)
        if fault is not None and fault.kind == "drop_after":
            connection.output.clear()
            connection.lose()

    def receive(self, phase: str, timeout: float) -> bytes:
        fault = self._next_step()
        connection = self._require()
        if fault is not None:
            connection.lose()
            connection.output.clear()
            return b""
        if connection.output:
            data = bytes(connection.output)
            connection.output.clear()
            return data
        if connection.closed:
            return b""
        raise SmtpTimeoutError(phase, timeout)

    def poll(self) -> bytes:
        fault = self._next_step()
        connection = self._require()
        if fault is not None:
            connection.lose()
            connection.output.clear()
            return b""
        data = bytes(connection.output)
        connection.output.clear()
        return data

    def is_quiet(self) -> bool:
        self._next_step()
        connection = self.connection
        return connection is not None and not connection.closed and not connection.output

    def close(self) -> None:
        if self.connection is not None:
            self.connection.lose()
        self.connection = None

    def _require(self) -> ServerConnection:
        if self.connection is None:
            raise ConnectionLostError("not connected")
        return self.connection

    @staticmethod
    def _details(tls: bool) -> TransportDetails:
        return TransportDetails(("127.0.0.1", 40000), ("127.0.0.1", 25),
                                TlsDetails("TLSv1.3", "memory", None) if tls else None)
