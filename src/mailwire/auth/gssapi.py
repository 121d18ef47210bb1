"""GSSAPI (RFC 4752): Kerberos 5 single sign-on through pyspnego, needs mailwire[kerberos].

The Kerberos credential is the user's: the default credential cache (``kinit``), a client
keytab (``KRB5_CLIENT_KTNAME``), or a cache or keytab named with ``Gssapi.configured``. So the
mechanism is chosen when the credentials carry no password and no token; the user name is the
principal (``alice`` or ``alice@REALM``), or ``""`` for the cache's default principal.

The target is the host-based service ``smtp@HOST``, HOST being the host name as the user gave
it (never its address or a name found by DNS). Mutual authentication is required: the server
must prove it holds the service key before anything is accepted. After the context is complete
the server offers its security layers in a wrapped token; mailwire picks "no security layer"
(TLS protects the connection), maximum size 0, and an empty authorization identity (act as the
authenticated principal), as RFC 4752 section 3.1 describes.

To name another service or a cache or keytab, register a configured mechanism::

    mailwire.auth.register(Gssapi.configured(service="SMTPSVC@mail.corp.example"))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from mailwire.auth.mechanism import (
    Credentials,
    Mechanism,
    SaslFlow,
    SmtpKnownAuthenticationType,
    register,
)
from mailwire.auth.optional import missing_extra
from mailwire.errors import AuthenticationError, SmtpError, SmtpUsageError

if TYPE_CHECKING:
    from spnego import ContextProxy

#: RFC 4752: bit 1 of the first octet of the server's offer is "no security layer".
NO_SECURITY_LAYER = 0x01
_OFFER_SIZE = 4  # the layers octet, then the server's maximum message size in 3 octets
_MUTUAL_AUTH = 0x00000002  # spnego.ContextReq.mutual_auth, GSS_C_MUTUAL_FLAG


@register
class Gssapi(Mechanism):
    flag = SmtpKnownAuthenticationType.GSSAPI
    #: ``service@host`` to ask a ticket for; None means ``smtp@`` the host name as given.
    service: ClassVar[str | None] = None
    #: A credential cache (``FILE:/path``, ``KCM:``...) instead of the default one.
    ccache: ClassVar[str | None] = None
    #: A client keytab to get the ticket from (the user name is then the principal).
    keytab: ClassVar[str | None] = None

    @classmethod
    def usable_with(cls, credentials: Credentials) -> bool:
        return credentials.password is None and credentials.oauth_token is None

    @classmethod
    def unavailable(cls) -> str | None:
        return missing_extra("kerberos", "spnego", "gssapi", "krb5")

    @classmethod
    def configured(
        cls, *, service: str | None = None, ccache: str | None = None, keytab: str | None = None
    ) -> type[Gssapi]:
        """A GSSAPI mechanism with its own target service, credential cache or keytab."""
        if service is not None:
            _split_service(service)
        if ccache is not None and keytab is not None:
            raise SmtpUsageError("GSSAPI takes a credential cache or a keytab, not both")
        settings = {"service": service, "ccache": ccache, "keytab": keytab}
        return type(cls.__name__, (cls,), settings)

    def service_name(self) -> str:
        return self.service or f"smtp@{self.context.host}"

    def flow(self) -> SaslFlow:
        target = self.service_name()
        service, host = _split_service(target)
        principal = self.credentials.username
        about = f"GSSAPI for {target}" + (f" as {principal}" if principal else "")
        context = self._context(service, host, about)
        with _failures(about, "could not start the Kerberos exchange"):
            token = context.step()
        while True:
            challenge = yield token
            if challenge is None:
                raise AuthenticationError(f"{about}: the server reported success before proving "
                                          "its identity (mutual authentication)")
            if context.complete:
                break
            with _failures(about, "the server's Kerberos token was refused"):
                token = context.step(challenge) or b""
        if not context.context_attr & _MUTUAL_AUTH:
            raise AuthenticationError(f"{about}: the server did not prove its identity")
        with _failures(about, "the server's security-layer offer is not valid"):
            offer = context.unwrap(challenge).data
        if len(offer) != _OFFER_SIZE:
            raise AuthenticationError(f"{about}: the security-layer offer has {len(offer)} "
                                      "octets, not 4")
        layers = offer[0]
        if not layers & NO_SECURITY_LAYER:
            raise AuthenticationError(f"{about}: the server requires a security layer "
                                      f"(offers {layers:#04x}); mailwire relies on TLS instead")
        with _failures(about, "could not answer the security-layer offer"):
            answer = context.wrap(bytes([NO_SECURITY_LAYER, 0, 0, 0]), encrypt=False).data
        yield answer  # a server asking for more after it fails in the AUTH flow

    def _context(self, service: str, host: str, about: str) -> ContextProxy:
        import spnego

        principal = self.credentials.username or None
        credential: Any = principal
        if self.keytab is not None:
            if principal is None:
                raise SmtpUsageError("GSSAPI with a keytab needs the principal as the user name")
            credential = spnego.KerberosKeytab(keytab=self.keytab, principal=principal)
        elif self.ccache is not None:
            credential = spnego.KerberosCCache(ccache=self.ccache, principal=principal)
        wanted = (spnego.ContextReq.mutual_auth | spnego.ContextReq.integrity
                  | spnego.ContextReq.sequence_detect)
        with _failures(about, "no usable Kerberos credential (kinit, or a keytab)"):
            return spnego.client(credential, None, hostname=host, service=service,
                                 protocol="kerberos", context_req=wanted)


def _split_service(name: str) -> tuple[str, str]:
    service, at, host = name.partition("@")
    if not (service and at and host) or any(ord(c) < 0x21 or ord(c) == 0x7F for c in name):
        raise SmtpUsageError(f"a GSSAPI service name is service@host (e.g. smtp@mail.example.com), "
                             f"not {name!r}")
    return service, host


@contextlib.contextmanager
def _failures(about: str, what: str) -> Iterator[None]:
    """Any failure of the Kerberos libraries becomes an ``AuthenticationError`` saying which."""
    try:
        yield
    except SmtpError:
        raise
    except Exception as error:  # pyspnego's SpnegoError, gssapi's GSSError, ValueError...
        raise AuthenticationError(f"{about}: {what}: {error}") from None
