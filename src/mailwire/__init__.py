"""mailwire: an SMTP client for every security mode, proxies and authentication mechanism."""

from mailwire.auth import SmtpKnownAuthenticationType
from mailwire.client import SmtpClient
from mailwire.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionLostError,
    DataRefusedError,
    DeliveryUnknownError,
    GreetingRefusedError,
    MessageError,
    ProxyError,
    RecipientsRefusedError,
    SenderRefusedError,
    SmtpConnectionError,
    SmtpError,
    SmtpProtocolError,
    SmtpResponseError,
    SmtpSecurityError,
    SmtpTimeoutError,
    SmtpUsageError,
    TlsNotSpokenError,
)
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import Reply
from mailwire.results import ConnectionInfo, SendResult
from mailwire.security import SecurityOptions

__all__ = [
    "AuthenticationError",
    "Capabilities",
    "ConfigError",
    "ConnectionInfo",
    "ConnectionLostError",
    "DataRefusedError",
    "DeliveryUnknownError",
    "GreetingRefusedError",
    "MessageError",
    "ProxyError",
    "RecipientsRefusedError",
    "Reply",
    "SecurityOptions",
    "SendResult",
    "SenderRefusedError",
    "SmtpClient",
    "SmtpConnectionError",
    "SmtpError",
    "SmtpKnownAuthenticationType",
    "SmtpProtocolError",
    "SmtpResponseError",
    "SmtpSecurityError",
    "SmtpTimeoutError",
    "SmtpUsageError",
    "TlsNotSpokenError",
]
