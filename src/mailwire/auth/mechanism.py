"""The plug-in contract for SASL mechanisms, and the registry that maps SASL names to them.

A mechanism is a class with a generator ``flow``: its first yield is the initial response
(``None`` when the mechanism starts without one); every later ``send`` gives it a decoded server
challenge and it yields the response. When the server reports success the conversation sends
``None``: a mechanism that still expected something (SCRAM's server signature) raises instead
of returning. Responses that carry a secret should be yielded as ``SecretBytes``, and secrets
never kept in a local variable as plain text: error reporters store the locals of every frame.

``register`` makes a class available under its SASL name; the built-in mechanisms use it too.
A user's own mechanism needs no flag::

    @register
    class Token(Mechanism):
        sasl_name = "X-TOKEN"

        def flow(self) -> SaslFlow:
            yield SecretBytes(self.password_secret.utf8("password"))
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from mailwire.auth.credentials import Credentials
from mailwire.auth.flags import SmtpKnownAuthenticationType
from mailwire.auth.secret import Secret
from mailwire.errors import AuthenticationError, SmtpUsageError

__all__ = [
    "AuthContext",
    "Credentials",
    "Mechanism",
    "SaslFlow",
    "SmtpKnownAuthenticationType",
    "register",
    "registered",
]

SaslFlow = Generator[bytes | None, bytes | None, None]
_SASL_NAME = re.compile(r"[A-Z0-9_-]{1,20}")  # RFC 4422 section 3.1


@dataclass(frozen=True, slots=True)
class AuthContext:
    """What a mechanism may know of the connection it authenticates on."""

    host: str = ""
    port: int = 0
    tls: bool = False
    peer_certificate: bytes | None = field(default=None, repr=False)
    """The server's certificate (DER) on a TLS connection: for channel binding."""
    client_certificate: bool = False
    """A client certificate may have been presented (set, or an ``ssl_context`` given)."""
    offered: tuple[str, ...] = ()
    """Every mechanism the server offers."""


class Mechanism(ABC):
    """One SASL mechanism. Subclasses set ``sasl_name`` (or a built-in ``flag``) and write
    ``flow``; ``usable_with``/``usable_on`` say when it can be chosen."""

    flag: ClassVar[SmtpKnownAuthenticationType] = SmtpKnownAuthenticationType.NONE
    sasl_name: ClassVar[str] = ""
    needs_token: ClassVar[bool] = False

    def __init__(self, credentials: Credentials, context: AuthContext | None = None) -> None:
        self.credentials = credentials
        self.context = context if context is not None else AuthContext()

    @classmethod
    def name(cls) -> str:
        return cls.sasl_name or (cls.flag.mechanism_name if cls.flag else "")

    @classmethod
    def usable_with(cls, credentials: Credentials) -> bool:
        """Whether the credentials hold what this mechanism needs (by default: a password, or
        a token for ``needs_token`` mechanisms)."""
        if cls.needs_token:
            return credentials.has_token
        return credentials.password is not None

    @classmethod
    def usable_on(cls, context: AuthContext) -> bool:
        """Whether the mechanism can run on this connection (PLUS needs TLS, say)."""
        return True

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the mechanism cannot run in this installation (an extra to install), or None."""
        return None

    @abstractmethod
    def flow(self) -> SaslFlow:
        """The exchange, as described in the module docstring."""

    @property
    def password_secret(self) -> Secret:
        password = self.credentials.password
        if password is None:
            raise AuthenticationError(f"{self.name()} needs a password")
        return password

    @property
    def password(self) -> str:
        """The password as text, for a library that needs it so (checked to be UTF-8)."""
        secret = self.password_secret
        secret.check_utf8("password")
        return secret.reveal()

    @property
    def token(self) -> Secret:
        """The OAuth access token (the conversation fetched it before the exchange)."""
        token = self.credentials.oauth_token
        if not isinstance(token, Secret):
            raise AuthenticationError(f"{self.name()} needs an OAuth token")
        return token


M = TypeVar("M", bound=type[Mechanism])
_REGISTRY: dict[str, type[Mechanism]] = {}


def register(mechanism: M) -> M:
    """Make a mechanism available by its SASL name (usable as a class decorator); a class
    registered under the name of an earlier one replaces it."""
    name = mechanism.name()
    if not _SASL_NAME.fullmatch(name):
        raise SmtpUsageError(f"{name!r} is not a SASL mechanism name (1 to 20 of A-Z 0-9 - _)")
    _REGISTRY[name] = mechanism
    return mechanism


def registered() -> dict[str, type[Mechanism]]:
    """Every registered mechanism, by SASL name."""
    return dict(_REGISTRY)
