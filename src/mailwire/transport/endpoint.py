"""Where and how to connect: the settings every transport shares."""

from __future__ import annotations

import errno
import ssl
from dataclasses import dataclass, field

from mailwire.errors import SmtpConnectionError
from mailwire.transport.proxy import Proxy
from mailwire.transport.tls import TlsSettings

LocalAddress = tuple[str, int]
_BIND_ERRORS = frozenset({errno.EADDRNOTAVAIL, errno.EADDRINUSE, errno.EACCES, errno.EINVAL,
                          errno.EAFNOSUPPORT})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The server, the way to reach it (proxy, local address) and the TLS set-up."""

    host: str
    port: int
    ssl_context: ssl.SSLContext
    tls: TlsSettings = field(default_factory=TlsSettings)
    proxy: Proxy | None = None
    bind: LocalAddress | None = None

    @property
    def server_hostname(self) -> str:
        """The name the certificate must match (and the SNI): the SMTP host, without brackets."""
        return self.host.strip("[]")

    def describe(self) -> str:
        return f"{self.host}:{self.port}"

    def bind_error(self, error: OSError) -> SmtpConnectionError | None:
        """A clear error when ``error`` came from binding the local address."""
        if self.bind is None or error.errno not in _BIND_ERRORS:
            return None
        host, port = self.bind
        return SmtpConnectionError(
            f"cannot bind the local address {host}:{port}: {error.strerror or error}"
        )
