"""CRAM-MD5 (RFC 2195): an HMAC-MD5 of the server's challenge, keyed with the password."""

from __future__ import annotations

import hashlib
import hmac

from mailwire.auth.mechanism import Mechanism, SaslFlow, SmtpKnownAuthenticationType, register
from mailwire.auth.secret import SecretBytes


@register
class CramMd5(Mechanism):
    flag = SmtpKnownAuthenticationType.CRAM_MD5

    def flow(self) -> SaslFlow:
        challenge = yield None
        if challenge is None:
            return
        # The digest lets anyone who sees it test password guesses offline: it is a secret too.
        yield SecretBytes(self.credentials.username.encode() + b" " + hmac.new(
            self.password_secret.utf8("password"), challenge, hashlib.md5).hexdigest().encode())
