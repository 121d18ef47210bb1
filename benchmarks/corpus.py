"""The bytes every client sends: one 1,229-byte message, and large messages written to disk.

Every client gets exactly the same bytes with the same envelope. The small message ends with
an empty line because ``smtp-source -F`` always sends one after the file: its file is the
message without that line (and with bare LF line ends, which ``smtp-source`` turns into CRLF),
so the bytes on the wire are the same for it too. No line starts with a dot, so a plain
``sendall`` of a large file is already valid DATA content.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

SENDER = "sender@example.com"
RECIPIENT = "recipient@example.net"
SMALL_SIZE = 1229
LINE_LENGTH = 76

_HEADER = (
    f"From: Benchmark Sender <{SENDER}>\r\n"
    f"To: Benchmark Recipient <{RECIPIENT}>\r\n"
    "Subject: mailwire benchmark message\r\n"
    "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
    "Message-ID: <benchmark.0001@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "Content-Transfer-Encoding: 7bit\r\n"
    "\r\n"
).encode("ascii")


def _text_lines(count: int, seed: int) -> list[bytes]:
    """Lines of letters and spaces (never starting with a dot), each with its CRLF."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + "      "
    lines = []
    for _ in range(count):
        body = "".join(rng.choices(alphabet, k=LINE_LENGTH)).strip() or "x"
        lines.append(body.encode("ascii") + b"\r\n")
    return lines


def small_message() -> bytes:
    """The 1,229-byte message: headers, text, and a final empty line."""
    body = b"".join(_text_lines(40, seed=1229))
    room = SMALL_SIZE - len(_HEADER) - 2  # the final empty line
    text = body[:room]
    cut = text.rfind(b"\r\n") + 2
    filler = room - cut - 2
    message = _HEADER + text[:cut] + (b"x" * filler + b"\r\n" if filler > 0 else b"") + b"\r\n"
    if filler < 0 or len(message) != SMALL_SIZE:
        raise AssertionError(f"small message is {len(message)} bytes, not {SMALL_SIZE}")
    return message


def smtp_source_file(message: bytes, directory: Path) -> Path:
    """The file for ``smtp-source -F`` that puts ``message`` on the wire byte for byte."""
    if not message.endswith(b"\r\n\r\n"):
        raise ValueError("the message must end with an empty line")
    path = directory / "smtp-source-message.txt"
    path.write_bytes(message[:-2].replace(b"\r\n", b"\n"))
    return path


def write_large_message(path: Path, size: int) -> Path:
    """A ``size``-byte text message at ``path`` (kept when it is already there)."""
    if path.exists() and path.stat().st_size == size:
        return path
    block = b"".join(_text_lines(13_000, seed=size))  # about 1 MiB, repeated
    with open(path, "wb") as handle:
        handle.write(_HEADER)
        remaining = size - len(_HEADER)
        while remaining > len(block):
            handle.write(block)
            remaining -= len(block)
        last = block[: remaining - 2].rstrip(b"\r") if remaining > 2 else b""
        handle.write(last.ljust(remaining - 2, b"x") + b"\r\n")
    if path.stat().st_size != size:
        raise AssertionError(f"{path} is {path.stat().st_size} bytes, not {size}")
    return path
