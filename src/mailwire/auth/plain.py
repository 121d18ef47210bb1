"""PLAIN (RFC 4616): the user name and password in one initial response."""

from __future__ import annotations

from mailwire.auth.mechanism import Mechanism, SaslFlow, SmtpKnownAuthenticationType, register
from mailwire.auth.secret import SecretBytes
from mailwire.errors import SmtpUsageError


@register
class Plain(Mechanism):
    flag = SmtpKnownAuthenticationType.PLAIN

    def flow(self) -> SaslFlow:
        username, password = self.credentials.username, self.password_secret
        if "\0" in username or "\0" in password:
            raise SmtpUsageError("PLAIN credentials must not contain NUL")
        yield SecretBytes(b"\0" + username.encode() + b"\0" + password.utf8("password"))
