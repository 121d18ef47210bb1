"""Timing each phase of a connection for ``probe``: a ``SmtpClient`` whose connection records
how long connecting, the TLS handshake, the greeting, EHLO and STARTTLS took.

It reaches into the client's private connection: a public per-phase trace hook in the library
would let it go.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any

from mailwire.client import SmtpClient
from mailwire.transport.details import TransportDetails
from mailwire.transport.endpoint import Endpoint
from mailwire.transport.sync_connection import SyncConnection

_PHASES = {"greeting": "greeting", "EHLO": "ehlo", "HELO": "ehlo", "STARTTLS": "starttls"}


class PhaseTimings:
    """Seconds per phase: connect, tls_handshake, greeting, ehlo, starttls, ehlo_after_tls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.tls_started = False

    def add(self, phase: str, elapsed: float) -> None:
        if phase == "ehlo" and self.tls_started:
            phase = "ehlo_after_tls"
        self.seconds[phase] = self.seconds.get(phase, 0.0) + elapsed

    def milliseconds(self) -> dict[str, float]:
        return {phase: round(value * 1000, 1) for phase, value in self.seconds.items()}


class TimedConnection(SyncConnection):
    def __init__(self, timings: PhaseTimings) -> None:
        super().__init__()
        self.timings = timings

    def open(self, endpoint: Endpoint, *, tls: bool, timeout: float) -> TransportDetails:
        started = time.perf_counter()
        details = super().open(endpoint, tls=False, timeout=timeout)
        self.timings.add("connect", time.perf_counter() - started)
        return self.start_tls(timeout=timeout) if tls else details

    def start_tls(self, *, timeout: float) -> TransportDetails:
        started = time.perf_counter()
        try:
            return super().start_tls(timeout=timeout)
        finally:
            self.timings.add("tls_handshake", time.perf_counter() - started)
            self.timings.tls_started = True

    def send(self, data: bytes, phase: str, timeout: float) -> None:
        self._timed(phase, super().send, data, phase, timeout)

    def receive(self, phase: str, timeout: float) -> bytes:
        received: bytes = self._timed(phase, super().receive, phase, timeout)
        return received

    def _timed(self, phase: str, operation: Any, *arguments: Any) -> Any:
        started = time.perf_counter()
        try:
            return operation(*arguments)
        finally:
            if phase in _PHASES:
                self.timings.add(_PHASES[phase], time.perf_counter() - started)


class TimedClient(SmtpClient):
    """A ``SmtpClient`` that records ``timings`` of each connection it makes."""

    timings: PhaseTimings
    _warns_without_verification = False
    """probe's unverified connection is a diagnosis that reports the certificate's trust
    itself; it sends nothing, so the usual warning would only be noise."""

    @cached_property
    def _connection(self) -> SyncConnection:
        return TimedConnection(self.timings)
