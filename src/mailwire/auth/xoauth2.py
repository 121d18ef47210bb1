"""XOAUTH2 (Google, Microsoft): the user and a bearer token in one initial response.

On failure the server sends a 334 with a JSON error; the client answers with an empty response
and the server then ends the exchange with its error reply.
"""

from __future__ import annotations

from mailwire.auth.bearer import BearerMechanism
from mailwire.auth.mechanism import SmtpKnownAuthenticationType, register
from mailwire.auth.secret import SecretBytes


@register
class XOAuth2(BearerMechanism):
    flag = SmtpKnownAuthenticationType.XOAUTH2
    error_answer = b""

    def initial_response(self) -> SecretBytes:
        return SecretBytes(b"user=" + self.credentials.username.encode() + b"\x01auth=Bearer "
                           + self.token.utf8("OAuth token") + b"\x01\x01")
