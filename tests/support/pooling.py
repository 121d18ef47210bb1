"""Servers and helpers for the pool tests: a STARTTLS + AUTH development server, a counting
server that notices when connections close, and messages labelled so the server can count them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from mailwire.devserver import Certificates, DevServer, TlsMode
from tests.support.chaos import ChaosServer, Faults, _ChaosSMTP

USER = "pool-user"
PASSWORD = "pool-secret-Zq81"


def labelled(label: str | int, size: int = 0) -> bytes:
    """A small message with an ``X-Soak-Id`` the counting servers tally."""
    body = b"x" * size + b"\r\n" if size else b"hello\r\n"
    return (b"From: app@example.com\r\nTo: user@example.org\r\n"
            b"X-Soak-Id: " + str(label).encode() + b"\r\nSubject: pooled\r\n\r\n" + body)


@pytest.fixture
def secure_server(smtp_server: Callable[..., DevServer]) -> DevServer:
    """A STARTTLS server that requires AUTH (user ``USER``, password ``PASSWORD``)."""
    return smtp_server(tls=TlsMode.STARTTLS, credentials={USER: PASSWORD},
                       require_starttls=True)


def secure_options(certificates: Certificates) -> dict[str, object]:
    return {"username": USER, "password": PASSWORD, "security": "ssl_explicit",
            "ca_file": str(certificates.ca_file), "timeout": 10.0}


class ImpatientServer(ChaosServer):
    """A counting server without faults that drops a connection idle for ``idle`` seconds."""

    def __init__(self, idle: float) -> None:
        super().__init__(Faults.none())
        self.idle = idle

    def _protocol(self) -> _ChaosSMTP:
        return _ChaosSMTP(self, hostname="impatient.test", ident="ESMTP impatient",
                          loop=self._loop, data_size_limit=None, timeout=self.idle)

    @property
    def active(self) -> int:
        with self._lock:
            return self._active


@pytest.fixture
def counting_server() -> Iterator[Callable[..., ChaosServer]]:
    """``counting_server(idle=30.0)``: a started fault-free ``ChaosServer`` that closes
    connections idle for ``idle`` seconds; ``.active`` is how many are open."""
    started: list[ChaosServer] = []

    def start(idle: float = 30.0) -> ImpatientServer:
        server = ImpatientServer(idle)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
