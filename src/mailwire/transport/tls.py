"""TLS contexts: verification on by default, against the system's certificate authorities."""

from __future__ import annotations

import ssl


def default_context() -> ssl.SSLContext:
    """A client context that verifies the certificate chain and the host name."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
