"""The plug-in contract for SASL mechanisms, and the registry that maps names to them.

A mechanism is a generator: its first yield is the initial response (``None`` when the mechanism
starts without one); every later ``send`` gives it a decoded server challenge and it yields the
response. When the server reports success the conversation sends ``None``: a mechanism that
still expected something (SCRAM's server signature) raises instead of returning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass
from enum import Flag, auto
from typing import ClassVar

from mailwire.errors import AuthenticationError, SmtpUsageError

SaslFlow = Generator[bytes | None, bytes | None, None]


class SmtpKnownAuthenticationType(Flag):
    """The SASL mechanisms mailwire implements, combinable as flags."""

    NONE = 0
    LOGIN = auto()
    PLAIN = auto()
    CRAM_MD5 = auto()
    XOAUTH2 = auto()
    SCRAM_SHA_1 = auto()
    SCRAM_SHA_256 = auto()
    NTLM = auto()
    GSSAPI = auto()
    ALL = LOGIN | PLAIN | CRAM_MD5 | XOAUTH2 | SCRAM_SHA_1 | SCRAM_SHA_256 | NTLM | GSSAPI

    @property
    def mechanism_name(self) -> str:
        """The SASL name of a single flag, e.g. ``CRAM-MD5``."""
        return (self.name or "").replace("_", "-")


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str | None = None
    oauth_token: str | None = None


class Mechanism(ABC):
    """One SASL mechanism. Subclasses set ``flag`` and ``strength`` and write ``flow``."""

    flag: ClassVar[SmtpKnownAuthenticationType]
    strength: ClassVar[int]
    needs_token: ClassVar[bool] = False

    def __init__(self, credentials: Credentials, *, server_host: str = "") -> None:
        self.credentials = credentials
        #: The server's host name as the user gave it (not its address), e.g. for ``smtp@HOST``.
        self.server_host = server_host

    @classmethod
    def name(cls) -> str:
        return cls.flag.mechanism_name

    @classmethod
    def usable_with(cls, credentials: Credentials) -> bool:
        secret = credentials.oauth_token if cls.needs_token else credentials.password
        return secret is not None

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the mechanism cannot run in this installation (an extra to install), or None."""
        return None

    @abstractmethod
    def flow(self) -> SaslFlow:
        """The exchange, as described in the module docstring."""

    @property
    def password(self) -> str:
        if self.credentials.password is None:
            raise AuthenticationError(f"{self.name()} needs a password")
        return self.credentials.password


_REGISTRY: dict[str, type[Mechanism]] = {}


def register(mechanism: type[Mechanism]) -> type[Mechanism]:
    """Make a mechanism available by its SASL name (usable as a class decorator)."""
    _REGISTRY[mechanism.name()] = mechanism
    return mechanism


def registered() -> dict[str, type[Mechanism]]:
    return dict(_REGISTRY)


def choose(
    offered: tuple[str, ...], allowed: SmtpKnownAuthenticationType, credentials: Credentials
) -> type[Mechanism]:
    """The strongest mechanism the server offers, the caller allows and the credentials fit."""
    fitting = [
        mechanism
        for name, mechanism in _REGISTRY.items()
        if name in offered and mechanism.flag & allowed and mechanism.usable_with(credentials)
    ]
    candidates = [mechanism for mechanism in fitting if mechanism.unavailable() is None]
    if fitting and not candidates:
        raise SmtpUsageError("; ".join(f"the server offers {mechanism.name()}, which "
                                       f"{mechanism.unavailable()}" for mechanism in fitting))
    if not candidates:
        secret = "an OAuth token" if credentials.oauth_token is not None else "a password"
        raise AuthenticationError(
            f"no common authentication mechanism: server offers {list(offered) or 'none'}, "
            f"allowed are {allowed_names(allowed)} with {secret}"
        )
    return max(candidates, key=lambda mechanism: mechanism.strength)


def allowed_names(allowed: SmtpKnownAuthenticationType) -> list[str]:
    return [name for name, mechanism in _REGISTRY.items() if mechanism.flag & allowed]


def supported_flags(offered: tuple[str, ...]) -> SmtpKnownAuthenticationType:
    """The flags of the offered mechanisms that mailwire implements."""
    flags = SmtpKnownAuthenticationType.NONE
    for name in offered:
        mechanism = _REGISTRY.get(name)
        if mechanism is not None:
            flags |= mechanism.flag
    return flags
