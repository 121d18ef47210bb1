"""OAuth 2 access tokens and the providers that hand them out (Aspose's ``ITokenProvider``).

``oauth_token`` may be a fixed token (``str``) or a provider, asked for a token before each
AUTH that uses one:

- an object with ``get_access_token(ignore_existing_token: bool = False)``, or
- a callable taking that one argument: ``provider(ignore_existing_token)``.

Either returns the token as ``str`` or as an ``OAuthToken`` (the token and its
``expiration_date``). ``ignore_existing_token=True`` asks for a new token from the issuer rather
than one the provider kept. mailwire asks with True when the token it was handed expires within
``REFRESH_MARGIN`` seconds, and once more when the server refused the token (an AUTH 334 with
an OAuth error), after which the AUTH is tried again once with the new token.

Providers run on the caller's thread (on the event loop, for ``AsyncSmtpClient``): one that
fetches from the network there should keep its token between calls and fetch only when asked
to ignore it or when it expires.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, TypeAlias, runtime_checkable

from mailwire.auth.secret import REDACTED, Secret
from mailwire.errors import AuthenticationError, SmtpUsageError

REFRESH_MARGIN: Final = 60.0
"""Seconds: a token that expires sooner than this is refreshed before it is used."""


class OAuthToken:
    """An access token and when it expires; its ``repr`` never shows the token."""

    __slots__ = ("_secret", "expiration_date")

    def __init__(self, token: str | Secret, expiration_date: datetime | None = None) -> None:
        secret = Secret.of(token)
        assert secret is not None
        self._secret = secret
        self.expiration_date = expiration_date
        """When the token stops working (a naive datetime is local time); None: unknown."""

    @classmethod
    def expiring_in(cls, token: str | Secret, seconds: float) -> OAuthToken:
        """A token that expires ``seconds`` from now (an OAuth reply's ``expires_in``)."""
        return cls(token, datetime.now(UTC) + timedelta(seconds=seconds))

    @property
    def token(self) -> str:
        return self._secret.reveal()

    @property
    def secret(self) -> Secret:
        return self._secret

    @property
    def expired(self) -> bool:
        return self.expires_within(0.0)

    def expires_within(self, seconds: float) -> bool:
        """Whether the token stops working less than ``seconds`` from now."""
        if self.expiration_date is None:
            return False
        expiry = self.expiration_date
        now = datetime.now(UTC) if expiry.tzinfo is not None else datetime.now()
        return (expiry - now).total_seconds() < seconds

    def __repr__(self) -> str:
        when = "unknown" if self.expiration_date is None else self.expiration_date.isoformat()
        return f"OAuthToken({REDACTED}, expiration_date={when})"


@runtime_checkable
class TokenProvider(Protocol):
    """Hands out access tokens (Aspose's ``ITokenProvider``)."""

    def get_access_token(self, ignore_existing_token: bool = False) -> OAuthToken | str: ...


TokenCallable: TypeAlias = Callable[[bool], "OAuthToken | str"]
OAuthTokenSource: TypeAlias = "str | Secret | OAuthToken | TokenProvider | TokenCallable"
"""What ``oauth_token`` accepts: a token, or a provider of tokens."""


def wrapped(source: OAuthTokenSource | None) -> OAuthTokenSource | None:
    """A token given as text wrapped in ``Secret``; a provider (or None) as it is."""
    return Secret(source) if isinstance(source, str) else source


def is_provider(source: object) -> bool:
    return isinstance(source, TokenProvider) or (
        callable(source) and not isinstance(source, str | Secret | OAuthToken))


def access_token(source: OAuthTokenSource, *, refresh: bool = False) -> Secret:
    """The token to send now: a fixed one, or the provider's (renewed when it is about to
    expire, or when ``refresh`` says the server refused the last one)."""
    if isinstance(source, Secret):
        return source
    if isinstance(source, str):
        return Secret(source)
    if isinstance(source, OAuthToken):
        return source.secret
    token = _ask(source, refresh)
    if not refresh and token.expires_within(REFRESH_MARGIN):
        token = _ask(source, True)
    return token.secret


def _ask(provider: TokenProvider | TokenCallable, ignore_existing_token: bool) -> OAuthToken:
    try:
        if isinstance(provider, TokenProvider):
            answer = provider.get_access_token(ignore_existing_token)
        else:
            answer = provider(ignore_existing_token)
    except Exception as error:
        raise AuthenticationError(
            f"the OAuth token provider failed ({type(error).__name__}); see the cause") from error
    if isinstance(answer, OAuthToken):
        return answer
    if isinstance(answer, str):
        return OAuthToken(Secret(answer))
    raise SmtpUsageError(f"the OAuth token provider returned {type(answer).__name__}, not a "
                         "token (str or OAuthToken)")
