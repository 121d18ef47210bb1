"""SCRAM-SHA-1, -256 and -512 (RFC 5802, RFC 7677), and their -PLUS variants bound to the TLS
channel with ``tls-server-end-point``; the computation is the scramp library's.

The server must prove it knows the password: success without a valid server signature fails.
On TLS the client says it could bind to the channel: PLUS sends the binding (``p=``); plain
SCRAM sends ``y`` when the server offers no PLUS mechanism (so a server that does support
binding sees that its PLUS names were stripped: a downgrade) and ``n`` when it offers one the
caller did not allow.

scramp's exceptions are turned into mailwire's outside of the handler that caught them, so
that no traceback kept with the error leads into scramp's frames, which hold the password.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from mailwire.auth import channel_binding
from mailwire.auth.mechanism import (
    AuthContext,
    Mechanism,
    SaslFlow,
    SmtpKnownAuthenticationType,
    register,
)
from mailwire.auth.secret import SecretBytes
from mailwire.errors import AuthenticationError, SmtpUsageError

if TYPE_CHECKING:
    from scramp import ScramClient


class Scram(Mechanism):
    """A SCRAM mechanism; ``plus`` ones need TLS and a certificate to bind to."""

    plus: ClassVar[bool] = False

    @classmethod
    def usable_on(cls, context: AuthContext) -> bool:
        return not cls.plus or cls._binding(context) is not None

    @staticmethod
    def _binding(context: AuthContext) -> bytes | None:
        if not context.tls:
            return None
        return channel_binding.tls_server_end_point(context.peer_certificate)

    def flow(self) -> SaslFlow:
        client = self._client()
        server_first = yield client.get_client_first().encode()
        if server_first is None:
            raise AuthenticationError(f"{self.name()}: the server accepted it without its "
                                      "challenge")
        failure = self._step(client.set_server_first, server_first)
        if failure is not None:
            raise AuthenticationError(f"{self.name()} exchange failed: {failure}")
        server_final = yield SecretBytes(self._final(client).encode())
        if server_final is None:
            raise AuthenticationError(f"{self.name()}: the server accepted SCRAM without "
                                      "proving its identity")
        failure = self._step(client.set_server_final, server_final)
        if failure is not None:
            raise AuthenticationError(f"{self.name()}: the server's proof failed ({failure})")
        yield b""

    def _client(self) -> ScramClient:
        from scramp import ScramClient, ScramException  # imported when first used: 90 ms

        binding = self._binding(self.context)
        if not self.plus and any(name.endswith("-PLUS") for name in self.context.offered):
            binding = None
        if self.plus and binding is None:
            raise AuthenticationError(f"{self.name()} needs a TLS certificate to bind to")
        failure = None
        try:
            client = ScramClient([self.name()], self.credentials.username, self.password,
                                 None if binding is None else (channel_binding.NAME, binding))
        except ScramException as error:
            failure = str(error)
        if failure is not None:
            raise SmtpUsageError(f"{self.name()} cannot use these credentials: {failure}")
        return client

    @staticmethod
    def _step(step: Callable[[str], object], message: bytes) -> str | None:
        """Run one step of scramp on the server's ``message``; a failure as text."""
        from scramp import ScramException

        try:
            step(message.decode())
        except (ScramException, UnicodeDecodeError) as error:
            return f"{type(error).__name__}: {error}"
        return None

    def _final(self, client: ScramClient) -> str:
        from scramp import ScramException

        failure = None
        try:
            return str(client.get_client_final())  # the proof: sent as SecretBytes
        except ScramException as error:
            failure = str(error)
        raise AuthenticationError(f"{self.name()} exchange failed: {failure}")


@register
class ScramSha1(Scram):
    flag = SmtpKnownAuthenticationType.SCRAM_SHA_1


@register
class ScramSha256(Scram):
    flag = SmtpKnownAuthenticationType.SCRAM_SHA_256


@register
class ScramSha512(Scram):
    flag = SmtpKnownAuthenticationType.SCRAM_SHA_512


@register
class ScramSha1Plus(Scram):
    flag = SmtpKnownAuthenticationType.SCRAM_SHA_1_PLUS
    plus = True


@register
class ScramSha256Plus(Scram):
    flag = SmtpKnownAuthenticationType.SCRAM_SHA_256_PLUS
    plus = True


@register
class ScramSha512Plus(Scram):
    flag = SmtpKnownAuthenticationType.SCRAM_SHA_512_PLUS
    plus = True
