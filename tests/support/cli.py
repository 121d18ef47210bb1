"""Running the ``mailwire`` command line as a subprocess, for the ``test_cli_*`` modules.

(Helpers only, no tests; it lives here because tests/support is not this feature's to edit.)
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

COMMAND = (sys.executable, "-m", "mailwire.cli")


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment without any MAILWIRE_* variable and with no user config file."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("MAILWIRE_")}
    env["XDG_CONFIG_HOME"] = str(home / "xdg-config")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``input``: piped to standard input (else it is /dev/null)."""
    return subprocess.run([*COMMAND, *args], cwd=cwd, env=env or cli_env(cwd),
                          stdin=subprocess.DEVNULL if input is None else None, input=input,
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr is exactly one ``mailwire: error: ...`` line and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mailwire: error: "), result.stderr
    return lines[0]


def parse_eml(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


@dataclass
class ServeProcess:
    """``mailwire serve`` running in a subprocess; its output lines collected as they come."""

    process: subprocess.Popen[str]
    port: int
    ca_file: Path | None
    banner: list[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def wait_for_line(self, pattern: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} from mailwire serve")


def start_serve(*args: str, cwd: Path, env: dict[str, str] | None = None,
                input: str | None = None) -> ServeProcess:
    """``input``: written to standard input, which is then closed (else it is /dev/null)."""
    process = subprocess.Popen([*COMMAND, "serve", "--port", "0", *args], cwd=cwd,
                               env=env or cli_env(cwd),
                               stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if input is not None:
        assert process.stdin is not None
        process.stdin.write(input)
        process.stdin.close()
    assert process.stdout is not None
    banner: list[str] = []
    for line in process.stdout:
        banner.append(line.rstrip("\n"))
        if "press Ctrl-C" in line:
            break
    text = "\n".join(banner)
    found = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
    if found is None:
        process.kill()
        raise AssertionError(f"mailwire serve did not start:\n{text}")
    ca = re.search(r"CA certificate: (\S+)", text)
    serve = ServeProcess(process, int(found.group(1)), Path(ca.group(1)) if ca else None, banner)
    threading.Thread(target=_collect, args=(process, serve.lines), daemon=True).start()
    return serve


def _collect(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line.rstrip("\n"))


def stop_serve(serve: ServeProcess) -> int:
    if serve.process.poll() is None:
        serve.process.terminate()
    return serve.process.wait(timeout=10)
