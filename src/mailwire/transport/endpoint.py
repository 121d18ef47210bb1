"""Where and how to connect: the settings every transport shares."""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The server's address and the TLS context used for it."""

    host: str
    port: int
    ssl_context: ssl.SSLContext

    @property
    def server_hostname(self) -> str:
        """The name the certificate must match (and the SNI): the SMTP host, without brackets."""
        return self.host.strip("[]")

    def describe(self) -> str:
        return f"{self.host}:{self.port}"
