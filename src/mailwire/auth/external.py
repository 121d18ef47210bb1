"""EXTERNAL (RFC 4422 appendix A): the TLS client certificate is the credential.

The initial response is the authorization identity: the user name, or empty (sent as ``=``) to
let the server take the identity from the certificate. EXTERNAL is usable on a TLS connection
with a client certificate (``client_certificate``, or an ``ssl_context`` that may hold one) and
comes last in the preference table, so it is used when there is no password or token, or when
``allowed_authentication`` allows nothing else.
"""

from __future__ import annotations

from mailwire.auth.credentials import Credentials
from mailwire.auth.mechanism import (
    AuthContext,
    Mechanism,
    SaslFlow,
    SmtpKnownAuthenticationType,
    register,
)


@register
class External(Mechanism):
    flag = SmtpKnownAuthenticationType.EXTERNAL

    @classmethod
    def usable_with(cls, credentials: Credentials) -> bool:
        return True

    @classmethod
    def usable_on(cls, context: AuthContext) -> bool:
        return context.tls and context.client_certificate

    def flow(self) -> SaslFlow:
        yield self.credentials.username.encode()
