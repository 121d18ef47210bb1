"""``Credentials``: who logs in, with which password or OAuth token, every secret wrapped.

The password and a fixed token are kept as ``Secret``; a token provider is kept as given and
asked at AUTH time (``tokens.py``). ``repr`` shows the user name and only whether a secret is
set. Text that cannot be sent (not valid UTF-8) is refused here, before any connection, with an
error that does not show it.
"""

from __future__ import annotations

from mailwire.auth.secret import REDACTED, Secret
from mailwire.auth.tokens import OAuthToken, OAuthTokenSource, access_token, is_provider
from mailwire.errors import SmtpUsageError


class Credentials:
    """A user name with a password, an OAuth token (or token provider), or neither (EXTERNAL).

    Pass secrets as ``Secret`` where possible: a plain ``str`` argument sits in this
    constructor's frame while it runs.
    """

    __slots__ = ("_oauth_token", "_password", "_username")

    def __init__(self, username: str, password: str | Secret | None = None,
                 oauth_token: OAuthTokenSource | None = None) -> None:
        if not isinstance(username, str):
            raise SmtpUsageError(f"the user name must be text (str), not {type(username).__name__}")
        self._username = username
        Secret(username).check_utf8("user name")
        self._password = Secret.of(password)
        if self._password is not None:
            self._password.check_utf8("password")
        token: Secret | OAuthTokenSource | None = oauth_token
        if isinstance(token, str):
            token = Secret(token)
        if isinstance(token, OAuthToken):
            token = token.secret
        if isinstance(token, Secret):
            token.check_utf8("OAuth token")
        elif token is not None and not is_provider(token):
            raise SmtpUsageError(f"oauth_token must be a token (str) or a token provider, not "
                                 f"{type(token).__name__}")
        self._oauth_token = token

    @property
    def username(self) -> str:
        return self._username

    @property
    def password(self) -> Secret | None:
        return self._password

    @property
    def oauth_token(self) -> OAuthTokenSource | None:
        """A ``Secret`` token, a token provider, or None."""
        return self._oauth_token

    @property
    def has_token(self) -> bool:
        return self._oauth_token is not None

    @property
    def token_from_provider(self) -> bool:
        return self._oauth_token is not None and is_provider(self._oauth_token)

    def access_token(self, *, refresh: bool = False) -> Secret | None:
        """The token to use now (asking the provider, if there is one)."""
        if self._oauth_token is None:
            return None
        return access_token(self._oauth_token, refresh=refresh)

    def with_access_token(self, token: Secret) -> Credentials:
        """These credentials with ``token`` fixed in place of the provider."""
        return Credentials(self._username, self._password, token)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return (self._username, self._password, self._oauth_token) == (
            other._username, other._password, other._oauth_token)

    def __hash__(self) -> int:
        return hash((self._username, self._password))

    def __repr__(self) -> str:
        password = "None" if self._password is None else REDACTED
        if self._oauth_token is None:
            token = "None"
        elif is_provider(self._oauth_token):
            token = f"<provider {type(self._oauth_token).__name__}>"
        else:
            token = REDACTED
        return f"Credentials(username={self._username!r}, password={password}, oauth_token={token})"
