"""Where and how to connect: the settings every transport shares."""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass, field

from mailwire.errors import ConnectionLostError, SmtpConnectionError, SmtpUsageError
from mailwire.transport.proxy import Proxy, format_address
from mailwire.transport.tls import TlsSettings, context_for

LocalAddress = tuple[str, int]
_BIND_ERRORS = frozenset({errno.EADDRNOTAVAIL, errno.EADDRINUSE, errno.EACCES, errno.EINVAL,
                          errno.EAFNOSUPPORT})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The server, the way to reach it (proxy, local address) and the TLS set-up.

    ``bind`` is the local ``(address, port)`` of the outgoing socket — to the server, or to
    the proxy when there is one; port 0 lets the system choose.
    """

    host: str
    port: int
    tls: TlsSettings = field(default_factory=TlsSettings)
    proxy: Proxy | None = None
    bind: LocalAddress | None = None

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context, built the first time TLS is used with these settings."""
        return context_for(self.tls)

    def __post_init__(self) -> None:
        bind = self.bind
        if bind is None:
            return
        if (not isinstance(bind, tuple | list) or len(bind) != 2
                or not isinstance(bind[0], str) or isinstance(bind[1], bool)
                or not isinstance(bind[1], int) or not 0 <= bind[1] < 65536):
            raise SmtpUsageError(f"a local address to bind is a (host, port) pair, not {bind!r}")
        object.__setattr__(self, "bind", (bind[0], bind[1]))

    @property
    def server_hostname(self) -> str:
        """The name the certificate must match (and the SNI): the SMTP host, without brackets."""
        return self.host.strip("[]")

    @property
    def tls_server(self) -> tuple[str, int]:
        """Whose TLS sessions may be resumed on this connection: the server's name and port."""
        return self.server_hostname, self.port

    @property
    def connect_address(self) -> tuple[str, int]:
        """The first hop of the connection: the proxy when there is one, else the server."""
        if self.proxy is not None:
            return self.proxy.host.strip("[]"), self.proxy.port
        return self.server_hostname, self.port

    def describe(self) -> str:
        return format_address(self.host, self.port)

    def describe_bind(self) -> str:
        return "no local address" if self.bind is None else format_address(*self.bind)

    def bind_failure(self, error: OSError) -> SmtpConnectionError:
        """The error for a local address that could not be bound (``error`` came from bind)."""
        if isinstance(error, socket.gaierror) or error.errno == errno.EAFNOSUPPORT:
            reason = f"not the address family (IPv4 or IPv6) of {self._first_hop()}"
        else:
            reason = (error.strerror or str(error)).lower()
        return SmtpConnectionError(
            f"cannot bind the local address {self.describe_bind()}: {reason}"
        )

    def bind_error(self, error: OSError) -> SmtpConnectionError | None:
        """A clear error when ``error`` probably came from binding the local address.

        For transports that cannot tell a bind failure from a connect failure (a library made
        the socket); one that binds by itself uses ``bind_failure``.
        """
        if self.bind is None or error.errno not in _BIND_ERRORS:
            return None
        return self.bind_failure(error)

    def _first_hop(self) -> str:
        host, port = self.connect_address
        where = "the proxy" if self.proxy is not None else "the server"
        return f"{where} {format_address(host, port)}"


class EndpointHolder:
    """What every connection keeps of the endpoint it was opened to: for TLS and for naming
    the server in errors."""

    def __init__(self) -> None:
        self._endpoint: Endpoint | None = None

    def _require_endpoint(self) -> Endpoint:
        if self._endpoint is None:
            raise ConnectionLostError("not connected")
        return self._endpoint

    def _where(self) -> str:
        return self._endpoint.describe() if self._endpoint else "the server"
