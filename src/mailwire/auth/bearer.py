"""What the two OAuth bearer-token mechanisms share: the token, and the server's error.

The conversation fetches the token (from the provider, if there is one) before the exchange;
when the server refuses it with a 334 JSON error, the mechanism keeps that error in
``oauth_error`` and gives the answer that ends the exchange, and the conversation may ask the
provider for a fresh token and try once more.
"""

from __future__ import annotations

from typing import ClassVar

from mailwire.auth.mechanism import Mechanism, SaslFlow
from mailwire.auth.oauth_error import OAuthErrorReply
from mailwire.auth.secret import SecretBytes
from mailwire.errors import SmtpUsageError


class BearerMechanism(Mechanism):
    """A mechanism whose credential is an OAuth 2 bearer token."""

    needs_token = True
    error_answer: ClassVar[bytes]
    """What the client sends after the server's error challenge."""

    oauth_error: OAuthErrorReply | None = None

    def flow(self) -> SaslFlow:
        for field in (self.credentials.username, self.token):
            if "\x01" in field:
                raise SmtpUsageError(f"{self.name()} credentials must not contain \\x01")
        error = yield self.initial_response()
        if error is not None:
            self.oauth_error = OAuthErrorReply.parse(error)
            yield self.error_answer

    def initial_response(self) -> SecretBytes:
        raise NotImplementedError
