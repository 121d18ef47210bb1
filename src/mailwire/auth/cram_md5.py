"""CRAM-MD5 (RFC 2195): an HMAC-MD5 of the server's challenge, keyed with the password."""

from __future__ import annotations

import hashlib
import hmac

from mailwire.auth.mechanism import Mechanism, SaslFlow, SmtpKnownAuthenticationType, register


@register
class CramMd5(Mechanism):
    flag = SmtpKnownAuthenticationType.CRAM_MD5
    strength = 30

    def flow(self) -> SaslFlow:
        challenge = yield None
        if challenge is None:
            return
        digest = hmac.new(self.password.encode(), challenge, hashlib.md5).hexdigest()
        yield f"{self.credentials.username} {digest}".encode()
