"""What operations report back: ``SendResult``, ``BulkResult`` and ``ConnectionInfo``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mailwire.auth import SmtpKnownAuthenticationType, supported_flags
from mailwire.errors import SmtpError
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import Reply
from mailwire.security import SecurityOptions


@dataclass(frozen=True, slots=True)
class SendResult:
    """One message's outcome: it was accepted (``reply`` is the server's 2xx after the data)
    for ``accepted``; ``refused`` maps the other recipients to the server's refusal."""

    sender: str
    accepted: tuple[str, ...]
    refused: dict[str, Reply]
    reply: Reply

    @property
    def all_accepted(self) -> bool:
        return not self.refused


@dataclass(frozen=True, slots=True)
class BulkResult:
    """The outcome of the message at position ``index`` of a ``send_many`` input: ``result``
    when it was sent, else ``error``; ``attempts`` counts the tries it took."""

    index: int
    result: SendResult | None
    error: SmtpError | None
    attempts: int

    @property
    def sent(self) -> bool:
        return self.result is not None


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """How the current connection was made."""

    security: SecurityOptions
    greeting: Reply
    capabilities: Capabilities
    tls_version: str | None = None
    cipher: str | None = None
    auth_mechanism: str | None = None
    local_address: tuple[Any, ...] = field(default=())
    remote_address: tuple[Any, ...] = field(default=())
    peer_certificate: bytes | None = field(default=None, repr=False)
    """The server's certificate (DER) on a TLS connection."""
    tls_resumed: bool = False
    """The TLS session of an earlier connection to the server was resumed (no full handshake)."""

    @property
    def supported_authentication(self) -> SmtpKnownAuthenticationType:
        return supported_flags(self.capabilities.auth_mechanisms)
