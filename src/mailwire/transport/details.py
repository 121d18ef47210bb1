"""What a transport reports about a connection it made: addresses and TLS parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TlsDetails:
    version: str
    cipher: str
    peer_certificate: bytes | None = None
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class TransportDetails:
    local_address: tuple[Any, ...]
    remote_address: tuple[Any, ...]
    tls: TlsDetails | None
