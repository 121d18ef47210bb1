"""mailwire: an SMTP client for every security mode, proxies and authentication mechanism."""

from mailwire.async_client import AsyncSmtpClient
from mailwire.auth import SmtpKnownAuthenticationType
from mailwire.client import SmtpClient
from mailwire.config import Settings, load_settings
from mailwire.dsn import DeliveryNotificationOptions, Recipient
from mailwire.errors import (
    AuthenticationError,
    ConfigError,
    ConnectionLostError,
    DataRefusedError,
    DeliveryUnknownError,
    GreetingRefusedError,
    MessageError,
    ProxyAuthenticationError,
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
from mailwire.message.dkim_signer import DkimSigner
from mailwire.options import BindEndpoint
from mailwire.outgoing import Outgoing
from mailwire.pickup import SmtpDeliveryMethod
from mailwire.pool import AsyncSmtpPool, SmtpPool
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import Reply
from mailwire.results import BulkResult, ConnectionInfo, SendResult
from mailwire.security import SecurityOptions
from mailwire.transport.proxy import HttpProxy, SocksProxy, SocksVersion
from mailwire.transport.tls import CertificateValidationCallback, EncryptionProtocols

__all__ = [
    "AsyncSmtpClient",
    "AsyncSmtpPool",
    "AuthenticationError",
    "BindEndpoint",
    "BulkResult",
    "Capabilities",
    "CertificateValidationCallback",
    "ConfigError",
    "ConnectionInfo",
    "ConnectionLostError",
    "DataRefusedError",
    "DeliveryNotificationOptions",
    "DeliveryUnknownError",
    "DkimSigner",
    "EncryptionProtocols",
    "GreetingRefusedError",
    "HttpProxy",
    "MessageError",
    "Outgoing",
    "ProxyAuthenticationError",
    "ProxyError",
    "Recipient",
    "RecipientsRefusedError",
    "Reply",
    "SecurityOptions",
    "SendResult",
    "SenderRefusedError",
    "Settings",
    "SmtpClient",
    "SmtpConnectionError",
    "SmtpDeliveryMethod",
    "SmtpError",
    "SmtpKnownAuthenticationType",
    "SmtpPool",
    "SmtpProtocolError",
    "SmtpResponseError",
    "SmtpSecurityError",
    "SmtpTimeoutError",
    "SmtpUsageError",
    "SocksProxy",
    "SocksVersion",
    "TlsNotSpokenError",
    "load_settings",
]
