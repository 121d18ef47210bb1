"""An embedded development SMTP server (aiosmtpd) for demos, ``mailwire serve`` and tests."""

from mailwire.devserver.auth import ALL_MECHANISMS, AuthenticatedUser
from mailwire.devserver.certificates import Certificates
from mailwire.devserver.server import DevServer, ReceivedMessage, TlsMode

__all__ = [
    "ALL_MECHANISMS",
    "AuthenticatedUser",
    "Certificates",
    "DevServer",
    "ReceivedMessage",
    "TlsMode",
]
