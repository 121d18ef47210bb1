"""SASL mechanisms as small plug-ins; importing this package registers the built-in ones."""

from mailwire.auth import cram_md5, gssapi, login, ntlm, plain, scram, xoauth2
from mailwire.auth.mechanism import (
    Credentials,
    Mechanism,
    SaslFlow,
    SmtpKnownAuthenticationType,
    choose,
    register,
    registered,
    supported_flags,
)

__all__ = [
    "Credentials",
    "Mechanism",
    "SaslFlow",
    "SmtpKnownAuthenticationType",
    "choose",
    "cram_md5",
    "gssapi",
    "login",
    "ntlm",
    "plain",
    "register",
    "registered",
    "scram",
    "supported_flags",
    "xoauth2",
]
