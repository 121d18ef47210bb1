"""PLAIN (RFC 4616): the user name and password in one initial response."""

from __future__ import annotations

from mailwire.auth.mechanism import Mechanism, SaslFlow, SmtpKnownAuthenticationType, register
from mailwire.errors import SmtpUsageError


@register
class Plain(Mechanism):
    flag = SmtpKnownAuthenticationType.PLAIN
    strength = 20

    def flow(self) -> SaslFlow:
        username, password = self.credentials.username, self.password
        if "\0" in username or "\0" in password:
            raise SmtpUsageError("PLAIN credentials must not contain NUL")
        yield b"\0" + username.encode() + b"\0" + password.encode()
