"""OAUTHBEARER (RFC 7628): a bearer token with the authorization identity, host and port.

The initial response is a GS2 header naming the user (``n,a=user,``) followed by
``\\x01``-separated ``host=``, ``port=`` and ``auth=Bearer <token>`` and a final ``\\x01\\x01``.
On failure the server sends a 334 with a JSON error (``status``, ``scope``,
``openid-configuration``); the client answers ``\\x01`` (RFC 7628 section 3.2.3) and the server
ends the exchange with its error reply.
"""

from __future__ import annotations

from mailwire.auth.bearer import BearerMechanism
from mailwire.auth.mechanism import SmtpKnownAuthenticationType, register
from mailwire.auth.secret import SecretBytes


@register
class OAuthBearer(BearerMechanism):
    flag = SmtpKnownAuthenticationType.OAUTHBEARER
    error_answer = b"\x01"

    def initial_response(self) -> SecretBytes:
        user = self.credentials.username
        header = b"n," + (b"a=" + saslname(user) if user else b"") + b","
        context = self.context
        fields = b""
        if context.host:
            fields += b"host=" + context.host.strip("[]").encode() + b"\x01"
        if context.port:
            fields += b"port=%d\x01" % context.port
        return SecretBytes(header + b"\x01" + fields + b"auth=Bearer "
                           + self.token.utf8("OAuth token") + b"\x01\x01")


def saslname(name: str) -> bytes:
    """RFC 5801's escaping of an authorization identity: ``=`` and ``,`` as ``=3D``, ``=2C``."""
    return name.replace("=", "=3D").replace(",", "=2C").encode()
