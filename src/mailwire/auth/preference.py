"""The order in which mailwire prefers SASL mechanisms: one table, strongest first.

When the server offers several mechanisms that the caller allows and the credentials fit, the
first of them in ``PREFERENCE`` is used. A mechanism registered under a name that is not in the
table (a user's own plug-in) comes before all of these: registering it says it is wanted.

==========================  ==================================================================
``OAUTHBEARER``, ``XOAUTH2``  a token was given: the server checks it with its issuer
``SCRAM-SHA-512-PLUS`` ...    SCRAM bound to the TLS channel (``tls-server-end-point``): the
``SCRAM-SHA-1-PLUS``          password never crosses, both sides prove themselves, and a
                              man in the middle with another certificate is detected
``SCRAM-SHA-512`` ...         SCRAM: the password never crosses and the server proves that it
``SCRAM-SHA-1``               knows it
``GSSAPI``                    Kerberos (from the credential cache)
``NTLM``                      Windows challenge-response
``CRAM-MD5``                  challenge-response with a keyed MD5; the server keeps the password
``PLAIN``, ``LOGIN``          the password itself (TLS protects it); PLAIN needs one round trip
``EXTERNAL``                  the TLS client certificate; last, so that it is used when it is
                              the only credential (no password, no token) or the only mechanism
                              allowed
==========================  ==================================================================
"""

from __future__ import annotations

from typing import Final

PREFERENCE: Final[tuple[str, ...]] = (
    "OAUTHBEARER",
    "XOAUTH2",
    "SCRAM-SHA-512-PLUS",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-512",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "GSSAPI",
    "NTLM",
    "CRAM-MD5",
    "PLAIN",
    "LOGIN",
    "EXTERNAL",
)


def rank(name: str) -> int:
    """Lower is preferred; names outside the table (plug-ins of the user) come first."""
    try:
        return PREFERENCE.index(name) + 1
    except ValueError:
        return 0
