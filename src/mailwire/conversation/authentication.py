"""Authentication over an open connection: the SASL exchange of the chosen mechanism.

The mechanism is a plug-in (``mailwire.auth``) written as a generator of responses; this flow
sends them as AUTH and continuation lines, decodes the server's challenges, and judges the end.

Rules kept here:
- Credentials never go over plaintext unless the caller allowed it.
- The initial response goes on the AUTH line when the line fits in 512 octets (RFC 4954
  section 4, with RFC 5321's command line limit); a longer one (a large OAuth token) waits for
  the server's empty 334 challenge.
- Every line that carries a secret is ``SecretBytes`` until written and ``<redacted>`` in the
  protocol trace; no secret is kept in a local variable as plain bytes or text.
- A server that fails the mechanism (bad challenge, SCRAM proof missing or wrong) is not
  trusted further: the connection is dropped.
- A bearer token from a provider that the server refuses (334 with an OAuth error) is renewed
  once and the exchange tried again; any other refusal ends at once, never trying a weaker
  mechanism.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace

from mailwire.auth import AuthContext, Credentials, Mechanism, SaslFlow, choose
from mailwire.auth.bearer import BearerMechanism
from mailwire.auth.oauth_error import OAuthAuthenticationError
from mailwire.auth.secret import SecretBytes, secret_bytes
from mailwire.conversation.channel import Channel
from mailwire.conversation.requests import Close, Flow
from mailwire.errors import (
    AuthenticationError,
    SmtpError,
    SmtpProtocolError,
    SmtpSecurityError,
    SmtpUsageError,
)
from mailwire.protocol import commands
from mailwire.protocol.replies import Reply
from mailwire.results import ConnectionInfo
from mailwire.security import SecurityOptions

COMMAND_LINE_LIMIT = 512
"""Octets, CRLF included: the most an AUTH line with its initial response may take."""
PLAINTEXT_OPTION = "allow_plaintext_credentials=True (CLI: --allow-plaintext-credentials)"


class AuthenticationFlows(Channel):
    """The AUTH exchange, for a connection that has been opened."""

    def authenticate(self) -> Flow[str]:
        """Authenticate with the preferred mechanism both sides allow; returns its name."""
        with self._fatal_unless_answered():
            return (yield from self._authenticate())

    def _authenticate(self) -> Flow[str]:
        credentials = self.settings.credentials
        info = self.info
        if credentials is None or info is None:
            raise SmtpUsageError("no credentials to authenticate with")
        where = self.settings.endpoint.describe()
        if info.security is SecurityOptions.NONE and not self.settings.allow_plaintext_credentials:
            raise SmtpSecurityError(
                f"refusing to send the credentials of user {credentials.username!r} over an "
                f"unencrypted connection to {where}; use a TLS mode, or set {PLAINTEXT_OPTION} "
                "to send them in the clear"
            )
        context = self._context(info)
        chosen = choose(context.offered, self.settings.allowed_authentication, credentials,
                        context)
        refresh = False
        while True:
            mechanism = chosen(self._with_token(chosen, credentials, refresh), context)
            reply = yield from self._exchange(mechanism)
            if reply.code == 235:
                break
            refused = isinstance(mechanism, BearerMechanism) and mechanism.oauth_error
            if refused and credentials.token_from_provider and not refresh:
                refresh = True
                continue
            raise self._failure(mechanism, credentials, reply)
        self.info = _replace_mechanism(self.info, chosen.name())
        return chosen.name()

    def _context(self, info: ConnectionInfo) -> AuthContext:
        endpoint = self.settings.endpoint
        return AuthContext(
            host=endpoint.host,
            port=endpoint.port,
            tls=info.security is not SecurityOptions.NONE,
            peer_certificate=info.peer_certificate,
            client_certificate=(endpoint.tls.client_certificate is not None
                                or endpoint.tls.ssl_context is not None),
            offered=self.capabilities.auth_mechanisms,
        )

    @staticmethod
    def _with_token(mechanism: type[Mechanism], credentials: Credentials,
                    refresh: bool) -> Credentials:
        """The credentials with the access token to use now fixed in (for token mechanisms)."""
        if not mechanism.needs_token:
            return credentials
        token = credentials.access_token(refresh=refresh)
        if token is None:
            raise SmtpUsageError(f"{mechanism.name()} needs an OAuth token")
        return credentials.with_access_token(token)

    def _exchange(self, mechanism: Mechanism) -> Flow[Reply]:
        """Run the mechanism to the server's verdict (not 334); returns that reply."""
        flow = mechanism.flow()
        try:
            return (yield from self._drive(mechanism.name(), flow))
        finally:
            flow.close()

    def _drive(self, name: str, flow: SaslFlow) -> Flow[Reply]:
        pending = secret_bytes(next(flow))
        if pending is not None and _fits(name, pending):
            reply = yield from self._command(SecretBytes(commands.auth(name, pending)), "AUTH",
                                             f"AUTH {name} <redacted>")
            pending = None
        else:
            reply = yield from self._command(commands.auth(name, None), "AUTH", f"AUTH {name}")
        while reply.code == 334:
            challenge = yield from self._challenge(reply)
            if pending is not None:
                response, pending = pending, None
            else:
                response = yield from self._respond(name, flow, challenge, reply)
            reply = yield from self._command(SecretBytes(commands.auth_response(response)),
                                             "AUTH", "<redacted>")
        if reply.code == 235:
            yield from self._check_finished(name, flow)
        return reply

    def _challenge(self, reply: Reply) -> Flow[bytes]:
        try:
            return base64.b64decode(reply.text.strip(), validate=True)
        except binascii.Error:
            pass
        yield from self._give_up()
        raise SmtpProtocolError("AUTH challenge is not base64", reply=reply)

    def _respond(self, name: str, flow: SaslFlow, challenge: bytes,
                 reply: Reply) -> Flow[SecretBytes]:
        """The mechanism's answer to ``challenge``; cancels the exchange when it has none."""
        failure: SmtpError | None = None
        try:
            return secret_bytes(flow.send(challenge)) or SecretBytes()
        except StopIteration:
            failure = AuthenticationError(
                f"{name}: the server asked for more than the mechanism provides", reply=reply)
        except SmtpError as error:
            failure = error
        yield from self._give_up()
        raise failure

    def _check_finished(self, name: str, flow: SaslFlow) -> Flow[None]:
        """After 235 the mechanism must be done (SCRAM: the server proved itself)."""
        failure: SmtpError | None = None
        try:
            flow.send(None)
        except StopIteration:
            return
        except SmtpError as error:
            failure = error
        else:
            failure = AuthenticationError(f"{name}: the server reported success too early")
        self.state.fail(failure)
        yield Close()
        raise failure

    def _give_up(self) -> Flow[None]:
        """Cancel the exchange and drop a connection whose server broke the mechanism."""
        yield from self._command(commands.AUTH_CANCEL, "AUTH", "*")
        self.state.fail()
        yield Close()

    def _failure(self, mechanism: Mechanism, credentials: Credentials,
                 reply: Reply) -> AuthenticationError:
        message = (f"{mechanism.name()} authentication failed for user "
                   f"{credentials.username!r} at {self.settings.endpoint.describe()}")
        if isinstance(mechanism, BearerMechanism) and mechanism.oauth_error is not None:
            return OAuthAuthenticationError(message, reply=reply,
                                            oauth_error=mechanism.oauth_error)
        return AuthenticationError(message, reply=reply)


def _fits(name: str, response: bytes) -> bool:
    encoded = 4 * ((len(response) + 2) // 3) or 1  # base64, or "=" for an empty response
    return len(b"AUTH ") + len(name) + 1 + encoded + 2 <= COMMAND_LINE_LIMIT


def _replace_mechanism(info: ConnectionInfo | None, name: str) -> ConnectionInfo | None:
    return None if info is None else replace(info, auth_mechanism=name)
