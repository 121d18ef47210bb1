"""Instructions per message of mailwire's own work (no socket, no server): for changes to the
hot path, ``python -m benchmarks.instructions [--chunking] [--bytes]``.

On loopback the single-connection rows are bound by the client's CPU, and timings on a shared
machine vary by tens of percent from run to run; an instruction count does not. This runs
``SmtpClient.send_many`` with the small-message benchmark's input (an ``Outgoing`` of the
1,229-byte message with its envelope; ``--bytes``: the message alone, its envelope read from
its headers) over a stand-in for the connection that answers every command at once (DATA, or
BDAT with ``--chunking``), under valgrind's callgrind for 200 and for 1,200 messages, and prints
the difference per message, so that start-up cancels out. Without valgrind it prints CPU
microseconds per message instead (noisier).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import subprocess
import sys
import time

SMALL, LARGE = 200, 1200
_COMMANDS = re.compile(rb"MAIL FROM|RCPT TO|DATA\r\n|\r\n\.\r\n|BDAT \d+ LAST|EHLO|QUIT|RSET")


def _answers(chunking: bool) -> dict[bytes, bytes]:
    extensions = b"250-PIPELINING\r\n250-CHUNKING\r\n" if chunking else b"250-PIPELINING\r\n"
    return {b"MAIL FROM": b"250 ok\r\n", b"RCPT TO": b"250 ok\r\n", b"DATA\r\n": b"354 go\r\n",
            b"\r\n.\r\n": b"250 queued\r\n", b"BDAT": b"250 queued\r\n",
            b"EHLO": b"250-stand-in\r\n" + extensions + b"250 8BITMIME\r\n",
            b"QUIT": b"221 bye\r\n", b"RSET": b"250 ok\r\n"}


def run(count: int, *, chunking: bool, raw: bool) -> None:
    """Send ``count`` messages over the stand-in connection (in this process)."""
    import mailwire
    from benchmarks import corpus
    from mailwire.transport import sync_connection
    from mailwire.transport.details import TransportDetails

    answers = _answers(chunking)
    pending = bytearray()

    def open_(self: object, endpoint: object, *, tls: bool, timeout: float) -> TransportDetails:
        pending[:] = b"220 stand-in\r\n"
        return TransportDetails(("127.0.0.1", 1), ("127.0.0.1", 25), None)

    def send(self: object, data: bytes, phase: str, timeout: float) -> None:
        for command in _COMMANDS.findall(data):
            pending.extend(answers[command[:4] if command.startswith(b"BDAT") else command])

    def receive(self: object, phase: str = "", timeout: float = 0.0) -> bytes:
        data = bytes(pending)
        pending.clear()
        return data

    connection = sync_connection.SyncConnection
    connection.open = open_  # type: ignore[method-assign,assignment]
    connection.send = send  # type: ignore[method-assign,assignment]
    connection.receive = receive  # type: ignore[method-assign,assignment]
    connection.poll = receive  # type: ignore[method-assign,assignment]
    connection.is_quiet = lambda self: True  # type: ignore[method-assign]
    connection.close = lambda self: None  # type: ignore[method-assign]

    message = corpus.small_message()
    item: object = message if raw else mailwire.Outgoing(message, "sender@example.com",
                                                         ["recipient@example.com"])
    client = mailwire.SmtpClient("127.0.0.1", 25, security="none")
    sent = sum(result.sent for result in client.send_many(itertools.repeat(item, count)))
    if sent != count:
        raise SystemExit(f"only {sent} of {count} messages were sent")


def _instructions(count: int, flags: list[str]) -> int:
    completed = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         "-m", "benchmarks.instructions", "--run", str(count), *flags],
        capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", completed.stderr)
    if completed.returncode != 0 or found is None:
        raise SystemExit(f"valgrind failed: {completed.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--chunking", action="store_true", help="the server offers CHUNKING")
    parser.add_argument("--bytes", action="store_true",
                        help="send the message alone (envelope from its headers)")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.run is not None:
        run(arguments.run, chunking=arguments.chunking, raw=arguments.bytes)
        return
    flags = [flag for flag, on in (("--chunking", arguments.chunking),
                                   ("--bytes", arguments.bytes)) if on]
    what = f"send_many, {'BDAT' if arguments.chunking else 'DATA'}, " \
           f"{'bytes' if arguments.bytes else 'Outgoing'}"
    if shutil.which("valgrind") is None:
        started = time.process_time()
        run(LARGE, chunking=arguments.chunking, raw=arguments.bytes)
        spent = time.process_time() - started
        print(f"{what}: {spent / LARGE * 1e6:.1f} us of CPU per message "
              "(valgrind not found: apt-get install valgrind for instruction counts)")
        return
    environment_note = "" if os.environ.get("PYTHONHASHSEED") else " (set PYTHONHASHSEED=0 " \
        "for run-to-run agreement within a few hundred instructions)"
    per_message = (_instructions(LARGE, flags) - _instructions(SMALL, flags)) / (LARGE - SMALL)
    print(f"{what}: {per_message / 1000:,.1f}K instructions per message{environment_note}")


if __name__ == "__main__":
    main()
