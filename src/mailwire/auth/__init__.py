"""SASL mechanisms as small plug-ins; importing this package registers the built-in ones.

``mechanism`` holds the plug-in contract and the registry, ``choice`` picks a mechanism by the
``preference`` table, ``credentials``, ``secret`` and ``tokens`` hold what is secret.
"""

from mailwire.auth import (
    cram_md5,
    external,
    gssapi,
    login,
    ntlm,
    oauthbearer,
    plain,
    scram,
    xoauth2,
)
from mailwire.auth.choice import (
    AllowedAuthentication,
    allowed_names,
    choose,
    implemented,
    supported_flags,
)
from mailwire.auth.credentials import Credentials
from mailwire.auth.flags import SmtpKnownAuthenticationType
from mailwire.auth.mechanism import AuthContext, Mechanism, SaslFlow, register, registered
from mailwire.auth.oauth_error import OAuthAuthenticationError, OAuthErrorReply
from mailwire.auth.preference import PREFERENCE
from mailwire.auth.secret import Secret, SecretBytes
from mailwire.auth.tokens import OAuthToken, OAuthTokenSource, TokenProvider

__all__ = [
    "PREFERENCE",
    "AllowedAuthentication",
    "AuthContext",
    "Credentials",
    "Mechanism",
    "OAuthAuthenticationError",
    "OAuthErrorReply",
    "OAuthToken",
    "OAuthTokenSource",
    "SaslFlow",
    "Secret",
    "SecretBytes",
    "SmtpKnownAuthenticationType",
    "TokenProvider",
    "allowed_names",
    "choose",
    "cram_md5",
    "external",
    "gssapi",
    "implemented",
    "login",
    "ntlm",
    "oauthbearer",
    "plain",
    "register",
    "registered",
    "scram",
    "supported_flags",
    "xoauth2",
]
