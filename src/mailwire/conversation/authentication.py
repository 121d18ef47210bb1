"""Authentication over an open connection: the SASL exchange of the chosen mechanism.

The mechanism is a plug-in (``mailwire.auth``) written as a generator of responses; this flow
sends them as AUTH and continuation lines, decodes the server's challenges, and judges the end.
Credentials never go over plaintext unless the caller allowed it, and every line that carries
them is redacted in the protocol trace.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace

from mailwire.auth import choose
from mailwire.conversation.channel import Channel
from mailwire.conversation.requests import Flow
from mailwire.errors import (
    AuthenticationError,
    SmtpError,
    SmtpProtocolError,
    SmtpSecurityError,
    SmtpUsageError,
)
from mailwire.protocol import commands
from mailwire.results import ConnectionInfo
from mailwire.security import SecurityOptions


class AuthenticationFlows(Channel):
    """The AUTH exchange, for a connection that has been opened."""

    def authenticate(self) -> Flow[str]:
        """Authenticate with the strongest mechanism both sides allow; returns its name."""
        with self._fatal_unless_answered():
            return (yield from self._authenticate())

    def _authenticate(self) -> Flow[str]:
        credentials = self.settings.credentials
        info = self.info
        if credentials is None or info is None:
            raise SmtpUsageError("no credentials to authenticate with")
        if info.security is SecurityOptions.NONE and not self.settings.allow_plaintext_credentials:
            raise SmtpSecurityError(
                "refusing to send credentials over an unencrypted connection; use a TLS mode, or "
                "set allow_plaintext_credentials=True to send them in the clear"
            )
        offered = self.capabilities.auth_mechanisms
        chosen = choose(offered, self.settings.allowed_authentication, credentials)
        mechanism = chosen(credentials, server_host=self.settings.endpoint.server_hostname)
        name = mechanism.name()
        flow = mechanism.flow()
        initial = next(flow)
        hidden = "" if initial is None else " <redacted>"
        command = commands.auth(name, initial)
        reply = yield from self._command(command, "AUTH", f"AUTH {name}{hidden}")
        while reply.code == 334:
            try:
                challenge = base64.b64decode(reply.text.strip(), validate=True)
            except binascii.Error:
                yield from self._cancel_auth()
                raise SmtpProtocolError("AUTH challenge is not base64", reply=reply) from None
            try:
                response = flow.send(challenge)
            except StopIteration:
                yield from self._cancel_auth()
                raise AuthenticationError(f"{name}: the server asked for more than the mechanism "
                                          "provides", reply=reply) from None
            except SmtpError:
                yield from self._cancel_auth()
                raise
            reply = yield from self._command(commands.auth_response(response or b""), "AUTH",
                                             "<redacted>")
        if reply.code != 235:
            raise AuthenticationError(f"{name} authentication failed", reply=reply)
        try:
            flow.send(None)
        except StopIteration:
            pass
        else:
            raise AuthenticationError(f"{name}: the server reported success too early")
        self.info = _replace_mechanism(self.info, name)
        return name

    def _cancel_auth(self) -> Flow[None]:
        yield from self._command(commands.AUTH_CANCEL, "AUTH", "*")


def _replace_mechanism(info: ConnectionInfo | None, name: str) -> ConnectionInfo | None:
    return None if info is None else replace(info, auth_mechanism=name)
