"""How a connection is secured: the ``SecurityOptions`` a caller chooses."""

from __future__ import annotations

from enum import Enum

IMPLICIT_TLS_PORT = 465
SUBMISSION_PORT = 587


class SecurityOptions(Enum):
    """The security mode of a connection.

    NONE          plaintext, no TLS at all
    SSL_EXPLICIT  plaintext greeting, then STARTTLS, which is required
    SSL_IMPLICIT  TLS from the first byte
    SSL_AUTO      implicit or explicit TLS, whichever the server speaks; never plaintext
    AUTO          like SSL_AUTO, but plaintext when the server offers no TLS at all
    """

    NONE = "none"
    SSL_EXPLICIT = "ssl_explicit"
    SSL_IMPLICIT = "ssl_implicit"
    SSL_AUTO = "ssl_auto"
    AUTO = "auto"

    def default_port(self) -> int:
        return IMPLICIT_TLS_PORT if self is SecurityOptions.SSL_IMPLICIT else SUBMISSION_PORT

    @classmethod
    def parse(cls, value: str | SecurityOptions) -> SecurityOptions:
        """A mode from its name in any case, with ``-`` or ``_`` (``ssl-explicit``, ``AUTO``)."""
        if isinstance(value, SecurityOptions):
            return value
        key = value.strip().lower().replace("-", "_")
        aliases = {"starttls": "ssl_explicit", "tls": "ssl_implicit", "ssl": "ssl_implicit",
                   "plain": "none", "plaintext": "none"}
        try:
            return cls(aliases.get(key, key))
        except ValueError:
            names = ", ".join(mode.name for mode in cls)
            raise ValueError(f"unknown security mode {value!r} (expected one of {names})") from None
