"""XOAUTH2: a bearer token instead of a password.

On failure the server sends a 334 with a JSON error; the client answers with an empty response
and the server then ends the exchange with its error reply.
"""

from __future__ import annotations

from mailwire.auth.mechanism import Mechanism, SaslFlow, SmtpKnownAuthenticationType, register
from mailwire.errors import SmtpUsageError


@register
class XOAuth2(Mechanism):
    flag = SmtpKnownAuthenticationType.XOAUTH2
    strength = 50
    needs_token = True

    def flow(self) -> SaslFlow:
        token = self.credentials.oauth_token or ""
        username = self.credentials.username
        if "\x01" in username or "\x01" in token:
            raise SmtpUsageError("XOAUTH2 credentials must not contain \\x01")
        error = yield f"user={username}\x01auth=Bearer {token}\x01\x01".encode()
        if error is not None:
            yield b""
