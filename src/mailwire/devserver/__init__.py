"""An embedded development SMTP server (aiosmtpd) for demos, ``mailwire serve`` and tests.

It needs the ``server`` extra (aiosmtpd, trustme): ``pip install 'mailwire[server]'``.
"""

try:
    import aiosmtpd  # noqa: F401
    import trustme  # noqa: F401
except ImportError as _missing:
    raise ImportError(f"mailwire.devserver needs {_missing.name}, which comes with the server "
                      "extra: pip install 'mailwire[server]'", name=_missing.name) from _missing

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
