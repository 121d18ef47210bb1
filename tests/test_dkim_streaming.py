"""A large message is DKIM-signed without being held in memory: two passes over a file, a spool
for an iterator.

As in ``test_streaming``, each send runs in a child process whose peak resident memory is read
before and after, against Postfix's ``smtp-sink`` (another process that keeps nothing). The
message is larger than the bound, so holding it once, let alone twice, would fail the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dkim_keys import DOMAIN, SELECTOR, key_pair
from tests.support.sinks import RunningSink

MESSAGE_MIB = 120
MEMORY_BOUND_MIB = 60

SENDER = r'''
import asyncio, json, pathlib, resource, sys
from mailwire import AsyncSmtpClient, DkimSigner, SmtpClient

kind, source, host, port, size_mib, path, key, domain, selector = sys.argv[1:10]
HEADER = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: big\r\n\r\n"
LINE = b"x  y\t" * 15 + b"\n"
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

signer = DkimSigner(domain, selector, pathlib.Path(key))

async def send_async():
    async with AsyncSmtpClient(host, int(port), security="none", timeout=60,
                               dkim_signer=signer) as client:
        await client.noop()
        before = peak_kib()
        return before, await client.send(message())

def send_sync():
    with SmtpClient(host, int(port), security="none", timeout=60, dkim_signer=signer) as client:
        client.noop()
        before = peak_kib()
        return before, client.send(message())

before, result = asyncio.run(send_async()) if kind == "async" else send_sync()
print(json.dumps({"before_kib": before, "after_kib": peak_kib(), "code": result.reply.code}))
'''


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dkim-big") / "big.eml"
    line = b"y  z\t" * 15 + b"\r\n"
    block = line * (1024 * 1024 // len(line))
    with path.open("wb") as handle:
        handle.write(b"From: a@example.com\r\nTo: b@example.org\r\nSubject: big file\r\n\r\n")
        for _ in range(MESSAGE_MIB):
            handle.write(block)
    return path


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dkim-key") / "key.pem"
    path.write_bytes(key_pair("rsa").pem)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(("kind", "source"), [("sync", "file"), ("async", "file"),
                                              ("sync", "iterator")])
def test_a_large_message_is_signed_in_bounded_memory(
    smtp_sink: RunningSink, big_file: Path, key_file: Path, kind: str, source: str
) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", SENDER, kind, source, smtp_sink.host, str(smtp_sink.port),
         str(MESSAGE_MIB), str(big_file), str(key_file), DOMAIN, SELECTOR],
        capture_output=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    report = json.loads(completed.stdout)
    assert report["code"] == 250
    grown_mib = (report["after_kib"] - report["before_kib"]) / 1024
    assert grown_mib < MEMORY_BOUND_MIB, f"peak memory grew by {grown_mib:.0f} MiB"
