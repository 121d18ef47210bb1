"""SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), computed by the scramp library.

The server must prove it knows the password: success without a valid server signature fails.
"""

from __future__ import annotations

from typing import ClassVar

from scramp import ScramClient, ScramException

from mailwire.auth.mechanism import Mechanism, SaslFlow, SmtpKnownAuthenticationType, register
from mailwire.errors import AuthenticationError


class _Scram(Mechanism):
    scram_name: ClassVar[str]

    def flow(self) -> SaslFlow:
        client = ScramClient([self.scram_name], self.credentials.username, self.password)
        server_first = yield client.get_client_first().encode()
        if server_first is None:
            raise AuthenticationError("server accepted SCRAM without its challenge")
        try:
            client.set_server_first(server_first.decode())
            server_final = yield client.get_client_final().encode()
            if server_final is None:
                raise AuthenticationError("server accepted SCRAM without proving its identity")
            client.set_server_final(server_final.decode())
        except (ScramException, UnicodeDecodeError) as exc:
            raise AuthenticationError(f"SCRAM exchange failed: {exc}") from None
        yield b""


@register
class ScramSha1(_Scram):
    flag = SmtpKnownAuthenticationType.SCRAM_SHA_1
    strength = 40
    scram_name = "SCRAM-SHA-1"


@register
class ScramSha256(_Scram):
    flag = SmtpKnownAuthenticationType.SCRAM_SHA_256
    strength = 45
    scram_name = "SCRAM-SHA-256"
