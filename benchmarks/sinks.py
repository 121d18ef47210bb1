"""The servers the benchmark sends to, started and stopped by it.

``SmtpSink`` runs Postfix's ``smtp-sink``: a C server that accepts and discards mail, offers
PIPELINING, and with ``-c`` writes a running count of the messages it received (``mesg=N``,
updated at every final dot) that the benchmark reads to check each client's own count.
``TlsServers`` runs mailwire's ``DevServer`` (aiosmtpd) three times: plaintext, STARTTLS and
implicit TLS, with throw-away certificates, for the connection set-up rows.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from mailwire.devserver import Certificates, DevServer, TlsMode

HOST = "127.0.0.1"
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
_COUNTER = re.compile(rb"mesg=(\d+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def find_tool(path: str) -> str:
    """The Postfix test tool at ``path`` (or on PATH); a clear error when Postfix is missing."""
    found = path if os.access(path, os.X_OK) else shutil.which(os.path.basename(path))
    if found is None:
        raise SystemExit(f"{os.path.basename(path)} not found: install Debian's postfix package "
                         "(apt-get install postfix), which ships smtp-sink and smtp-source")
    return found


class SmtpSink:
    """``smtp-sink -c`` on a free local port, its counter written to a file in ``directory``."""

    def __init__(self, directory: Path, backlog: int = 1000) -> None:
        self.port = free_port()
        self._counter_file = directory / "smtp-sink.out"
        command = [find_tool(SMTP_SINK), "-c", "-m", "1000"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # required when started as root
        command += [f"{HOST}:{self.port}", str(backlog)]
        with open(self._counter_file, "wb") as out:
            self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _wait_for_greeting(self.port, self._process)

    @property
    def pid(self) -> int:
        return self._process.pid

    def received(self) -> int:
        """Messages received so far (the last ``mesg=`` the sink wrote)."""
        with open(self._counter_file, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            counts = _COUNTER.findall(handle.read())
        return int(counts[-1]) if counts else 0

    def wait_received(self, expected: int, timeout: float = 2.0) -> int:
        """The count once it reaches ``expected`` (or whatever it is after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while (count := self.received()) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return count

    def cpu_seconds(self) -> float:
        """User plus system CPU time the sink has used."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> SmtpSink:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def _wait_for_greeting(port: int, process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"smtp-sink exited at once (status {process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as probe:
            if probe.recv(100).startswith(b"220"):
                probe.sendall(b"QUIT\r\n")
                return
        time.sleep(0.02)
    process.terminate()
    raise SystemExit(f"smtp-sink did not answer on port {port}")


class TlsServers:
    """Three ``DevServer``s: plaintext, STARTTLS, and implicit TLS on a non-standard port."""

    def __init__(self, directory: Path) -> None:
        self.certificates = Certificates.generate(directory / "certificates")
        self.servers = {
            mode: DevServer(tls=mode, certificates=self.certificates)
            for mode in (TlsMode.NONE, TlsMode.STARTTLS, TlsMode.IMPLICIT)
        }

    @property
    def ca_file(self) -> str:
        return str(self.certificates.ca_file)

    def port(self, mode: TlsMode) -> int:
        return self.servers[mode].port

    def __enter__(self) -> TlsServers:
        started = []
        try:
            for server in self.servers.values():
                server.start()
                started.append(server)
        except BaseException:
            for server in started:
                server.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for server in self.servers.values():
            server.stop()
