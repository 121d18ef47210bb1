"""One large message, streamed: its time and the client process's peak memory.

Each send runs in a fresh worker process. Right before it, the kernel's high-water mark of the
process's resident memory is reset (``/proc/self/clear_refs``) and the resident size is read
as the baseline; after it, the high-water mark minus that baseline is the peak memory the send
cost. Where the reset is not allowed, ``ru_maxrss`` before and after is used instead (it can
only under-state the cost, never over-state it).

mailwire gets the file's path and streams it. smtplib and aiosmtplib need the message as one
``bytes`` object, so they read the file inside the timed and measured part. The ceiling is a
plain socket: EHLO, MAIL, RCPT, DATA, then the file's bytes (1 MiB reads, ``sendall`` each) and
the final dot, one command at a time.
"""

from __future__ import annotations

import asyncio
import re
import resource
import smtplib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

import mailwire
from benchmarks.corpus import RECIPIENT, SENDER
from benchmarks.sinks import HOST

TIMEOUT = 300.0
READ_SIZE = 1024 * 1024


class PeakMemory:
    """The process's peak resident memory above its size at ``start()``, in bytes."""

    def __init__(self) -> None:
        self.method = ""
        self.baseline = 0

    def start(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self.method = "VmHWM after reset"
            self.baseline = _status_kib("VmRSS") * 1024
        except OSError:
            self.method = "ru_maxrss"
            self.baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def peak_above_baseline(self) -> int:
        if self.method == "ru_maxrss":
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.baseline
        return _status_kib("VmHWM") * 1024 - self.baseline


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        found = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    if found is None:
        raise OSError(f"no {field} in /proc/self/status")
    return int(found.group(1))


class Stopwatch:
    """``start()`` right before the send (resets the memory peak), ``stop()`` once the server
    has accepted the message; QUIT afterwards is not timed."""

    def __init__(self) -> None:
        self.memory = PeakMemory()
        self.started: float | None = None
        self.seconds: float | None = None
        self.peak = 0

    def start(self) -> None:
        self.memory.start()
        self.started = time.perf_counter()

    def stop(self) -> None:
        assert self.started is not None, "stop() before start()"
        self.seconds = time.perf_counter() - self.started
        self.peak = self.memory.peak_above_baseline()


@dataclass
class LargeOutcome:
    sent: bool
    seconds: float
    baseline_rss: int
    peak_above_baseline: int
    memory_method: str
    error: str | None = None


Send = Callable[[int, Path, Stopwatch], None]


def measure(send: Send, port: int, path: Path) -> LargeOutcome:
    watch = Stopwatch()
    try:
        send(port, path, watch)
    except Exception as failure:
        return LargeOutcome(False, 0.0, 0, 0, "", f"{type(failure).__name__}: {failure}")
    if watch.seconds is None:
        return LargeOutcome(False, 0.0, 0, 0, "", "the send did not stop its stopwatch")
    return LargeOutcome(True, watch.seconds, watch.memory.baseline, watch.peak,
                        watch.memory.method)


def mailwire_sync(port: int, path: Path, watch: Stopwatch) -> None:
    client = mailwire.SmtpClient(HOST, port, security="none", timeout=TIMEOUT)
    watch.start()
    client.send(path, sender=SENDER, recipients=[RECIPIENT])
    watch.stop()
    client.quit()


def mailwire_async(port: int, path: Path, watch: Stopwatch) -> None:
    async def main() -> None:
        client = mailwire.AsyncSmtpClient(HOST, port, security="none", timeout=TIMEOUT)
        watch.start()
        await client.send(path, sender=SENDER, recipients=[RECIPIENT])
        watch.stop()
        await client.quit()

    asyncio.run(main())


def smtplib_bytes(port: int, path: Path, watch: Stopwatch) -> None:
    watch.start()
    client = smtplib.SMTP(HOST, port, timeout=TIMEOUT)
    client.sendmail(SENDER, [RECIPIENT], path.read_bytes())
    watch.stop()
    client.quit()


def aiosmtplib_bytes(port: int, path: Path, watch: Stopwatch) -> None:
    async def main() -> None:
        watch.start()
        client = aiosmtplib.SMTP(hostname=HOST, port=port, timeout=TIMEOUT, start_tls=False)
        await client.connect()
        await client.sendmail(SENDER, [RECIPIENT], path.read_bytes())
        watch.stop()
        await client.quit()

    asyncio.run(main())


def plain_sendall(port: int, path: Path, watch: Stopwatch) -> None:
    watch.start()
    with socket.create_connection((HOST, port), TIMEOUT) as sock:
        replies = sock.makefile("rb")

        def command(line: bytes, expected: bytes) -> None:
            if line:
                sock.sendall(line)
            reply = replies.readline()
            while reply[3:4] == b"-":
                reply = replies.readline()
            if not reply.startswith(expected):
                raise OSError(f"after {line!r}: {reply!r}")

        command(b"", b"220")
        command(b"EHLO bench.example\r\n", b"250")
        command(f"MAIL FROM:<{SENDER}>\r\n".encode(), b"250")
        command(f"RCPT TO:<{RECIPIENT}>\r\n".encode(), b"250")
        command(b"DATA\r\n", b"354")
        buffer = bytearray(READ_SIZE)
        view = memoryview(buffer)
        with open(path, "rb", buffering=0) as handle:
            while read := handle.readinto(buffer):
                sock.sendall(view[:read])
        command(b".\r\n", b"250")
        watch.stop()
        command(b"QUIT\r\n", b"221")


SENDS: dict[str, Send] = {
    "mailwire-send": mailwire_sync,
    "mailwire-async-send": mailwire_async,
    "smtplib": smtplib_bytes,
    "aiosmtplib": aiosmtplib_bytes,
    "sendall": plain_sendall,
}
