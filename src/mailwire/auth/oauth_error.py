"""The OAuth error a server sends when it refuses a bearer token, and the error mailwire raises.

OAUTHBEARER (RFC 7628 section 3.2.2) and XOAUTH2 answer a refused token with a 334 challenge
holding a JSON object: ``status`` (``invalid_token``, or ``401`` from XOAUTH2 servers),
``scope`` (what the token should allow), ``openid-configuration`` (where to learn how to get a
token) and ``schemes``. ``OAuthAuthenticationError`` carries them beside the server's reply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailwire.errors import AuthenticationError

if TYPE_CHECKING:
    from mailwire.protocol.replies import Reply

_SHOWN_LIMIT = 200


@dataclass(frozen=True, slots=True)
class OAuthErrorReply:
    """The fields of the server's JSON error; ``raw`` is the challenge when it was not JSON."""

    status: str | None = None
    scope: str | None = None
    openid_configuration: str | None = None
    schemes: str | None = None
    raw: str | None = None

    @classmethod
    def parse(cls, challenge: bytes) -> OAuthErrorReply:
        try:
            fields: Any = json.loads(challenge)
        except ValueError:
            return cls(raw=_printable(challenge.decode("utf-8", "replace")))
        if not isinstance(fields, dict):
            return cls(raw=_printable(challenge.decode("utf-8", "replace")))

        def text(key: str) -> str | None:
            value = fields.get(key)
            return None if value is None else _printable(str(value))

        return cls(text("status"), text("scope"), text("openid-configuration"),
                   text("schemes"))

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in (
            ("status", self.status), ("scope", self.scope),
            ("openid-configuration", self.openid_configuration), ("schemes", self.schemes),
        ) if value is not None]
        if self.raw is not None:
            parts.append(f"error={self.raw}")
        return ", ".join(parts) or "no details"


class OAuthAuthenticationError(AuthenticationError):
    """The server refused the OAuth token; ``status``, ``scope``, ``openid_configuration`` and
    ``schemes`` are from its JSON error (None where it gave none)."""

    def __init__(self, message: str, *, reply: Reply | None = None,
                 oauth_error: OAuthErrorReply | None = None) -> None:
        self.oauth_error = oauth_error or OAuthErrorReply()
        super().__init__(f"{message} (token refused: {self.oauth_error.describe()})",
                         reply=reply)

    @property
    def status(self) -> str | None:
        return self.oauth_error.status

    @property
    def scope(self) -> str | None:
        return self.oauth_error.scope

    @property
    def openid_configuration(self) -> str | None:
        return self.oauth_error.openid_configuration

    @property
    def schemes(self) -> str | None:
        return self.oauth_error.schemes


def _printable(text: str) -> str:
    """Server text made safe to show: control characters escaped, length bounded."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= _SHOWN_LIMIT else shown[:_SHOWN_LIMIT] + "..."
