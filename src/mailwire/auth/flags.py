"""``SmtpKnownAuthenticationType``: the built-in mechanisms as combinable flags (Aspose's API).

``str()`` and ``repr()`` list the SASL names (``SCRAM-SHA-256, PLAIN``), strongest first, so
printing ``client.supported_authentication`` shows what the server offers, never ``ALL``.
"""

from __future__ import annotations

from enum import Flag, auto

from mailwire.auth.preference import rank


class SmtpKnownAuthenticationType(Flag):
    """The SASL mechanisms mailwire implements, combinable as flags; ``ALL`` is every flag."""

    NONE = 0
    LOGIN = auto()
    PLAIN = auto()
    CRAM_MD5 = auto()
    XOAUTH2 = auto()
    SCRAM_SHA_1 = auto()
    SCRAM_SHA_256 = auto()
    SCRAM_SHA_512 = auto()
    SCRAM_SHA_1_PLUS = auto()
    SCRAM_SHA_256_PLUS = auto()
    SCRAM_SHA_512_PLUS = auto()
    OAUTHBEARER = auto()
    EXTERNAL = auto()
    NTLM = auto()
    GSSAPI = auto()
    # A new flag goes above this line and into ALL (a test checks that ALL is every flag).
    ALL = (LOGIN | PLAIN | CRAM_MD5 | XOAUTH2 | SCRAM_SHA_1 | SCRAM_SHA_256 | SCRAM_SHA_512
           | SCRAM_SHA_1_PLUS | SCRAM_SHA_256_PLUS | SCRAM_SHA_512_PLUS | OAUTHBEARER | EXTERNAL
           | NTLM | GSSAPI)

    @property
    def mechanism_name(self) -> str:
        """The SASL name of a single flag, e.g. ``CRAM-MD5``."""
        return (self.name or "").replace("_", "-")

    @property
    def mechanism_names(self) -> tuple[str, ...]:
        """The SASL names of every flag set, strongest first."""
        return tuple(sorted((flag.mechanism_name for flag in self), key=rank))

    def __str__(self) -> str:
        return ", ".join(self.mechanism_names) or "none"

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self}>"
