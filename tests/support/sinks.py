"""Postfix's ``smtp-sink``: a fast C SMTP server in its own process, for volume and memory tests.

It accepts everything, keeps nothing and answers PIPELINING; being another process, it does not
count toward the test process's memory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

SMTP_SINK = "/usr/sbin/smtp-sink"


@dataclass(frozen=True)
class RunningSink:
    host: str
    port: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[RunningSink]:
    """A running ``smtp-sink`` on 127.0.0.1 (skipped where Postfix is missing, but not in CI)."""
    if not shutil.which(SMTP_SINK) and not os.path.exists(SMTP_SINK):
        if os.environ.get("CI"):
            pytest.fail("smtp-sink (Debian package postfix) is not installed")
        pytest.skip("smtp-sink (Debian package postfix) is not installed")
    port = _free_port()
    command = [SMTP_SINK, "-c", f"127.0.0.1:{port}", "1000"]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, error = process.communicate()
                pytest.fail(f"smtp-sink did not start: {error.decode(errors='replace')}")
            time.sleep(0.05)
    try:
        yield RunningSink("127.0.0.1", port)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
