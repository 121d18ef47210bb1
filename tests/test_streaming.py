"""Large messages are streamed: the client's memory stays near its buffers, whatever the size.

Each send runs in a child process so that its peak resident memory can be read without the
test-suite's own; the server is Postfix's smtp-sink, another process that keeps nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.sinks import RunningSink

MESSAGE_MIB = 200
MEMORY_BOUND_MIB = 100

SENDER = r'''
import asyncio, json, pathlib, resource, sys
from mailwire import AsyncSmtpClient, SmtpClient

kind, source, host, port, size_mib, path = sys.argv[1:7]
HEADER = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: big\r\n\r\n"
LINE = b"x" * 78 + b"\n"
BLOCK = LINE * (1024 * 1024 // len(LINE))

def generated():
    yield HEADER
    sent = 0
    while sent < int(size_mib) * 1024 * 1024:
        yield BLOCK
        sent += len(BLOCK)

def message():
    return generated() if source == "iterator" else pathlib.Path(path)

def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

async def send_async():
    async with AsyncSmtpClient(host, int(port), security="none", timeout=60) as client:
        await client.noop()
        before = peak_kib()
        result = await client.send(message())
        return before, result

def send_sync():
    with SmtpClient(host, int(port), security="none", timeout=60) as client:
        client.noop()
        before = peak_kib()
        return before, client.send(message())

before, result = asyncio.run(send_async()) if kind == "async" else send_sync()
print(json.dumps({"before_kib": before, "after_kib": peak_kib(), "code": result.reply.code,
                  "accepted": list(result.accepted)}))
'''


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.eml"
    line = b"y" * 78 + b"\r\n"
    block = line * (1024 * 1024 // len(line))
    with path.open("wb") as handle:
        handle.write(b"From: a@example.com\r\nTo: b@example.org\r\nSubject: big file\r\n\r\n")
        for _ in range(MESSAGE_MIB):
            handle.write(block)
    return path


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("source", ["iterator", "file"])
def test_a_200_mib_message_is_streamed_in_bounded_memory(
    smtp_sink: RunningSink, big_file: Path, kind: str, source: str
) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", SENDER, kind, source, smtp_sink.host, str(smtp_sink.port),
         str(MESSAGE_MIB), str(big_file)],
        capture_output=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    report = json.loads(completed.stdout)
    assert report["code"] == 250 and report["accepted"] == ["b@example.org"]
    grown_mib = (report["after_kib"] - report["before_kib"]) / 1024
    assert grown_mib < MEMORY_BOUND_MIB, f"peak memory grew by {grown_mib:.0f} MiB"
