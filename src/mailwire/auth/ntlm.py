"""NTLM ([MS-SMTPNTLM]): the NTLMv2 challenge-response of Exchange and Samba, needs mailwire[ntlm].

The messages are computed by pyspnego's own NTLM implementation, never a system one: the
NEGOTIATE message goes as the initial response, the server's CHALLENGE comes back in a 334 and
the AUTHENTICATE message answers it. The user name may be ``user``, ``DOMAIN\\user`` or
``user@domain``. Only NTLMv2 is ever sent: an ``LM_COMPAT_LEVEL`` below 3 in the environment
(which would make pyspnego answer with NTLMv1 or LM) is refused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from mailwire.auth.mechanism import Mechanism, SaslFlow, SmtpKnownAuthenticationType, register
from mailwire.auth.optional import missing_extra
from mailwire.errors import AuthenticationError, SmtpError, SmtpUsageError

_NTLMV2_ONLY = 3


@register
class Ntlm(Mechanism):
    flag = SmtpKnownAuthenticationType.NTLM

    @classmethod
    def unavailable(cls) -> str | None:
        return missing_extra("ntlm", "spnego")

    def flow(self) -> SaslFlow:
        _require_ntlmv2()
        import spnego

        with _failures("could not start"):
            context = spnego.client(
                self.credentials.username,
                self.password,
                hostname=self.context.host or "unspecified",
                service="smtp",
                protocol="ntlm",
                options=spnego.NegotiateOptions.use_ntlm,
            )
            negotiate = context.step()
        challenge = yield negotiate
        if challenge is None:
            raise AuthenticationError("NTLM: the server reported success before its challenge")
        with _failures("the server's challenge is not a valid NTLM CHALLENGE message"):
            authenticate = context.step(challenge)
        if not authenticate:
            raise AuthenticationError("NTLM: no answer to the server's challenge")
        yield authenticate


def _require_ntlmv2() -> None:
    level = os.environ.get("LM_COMPAT_LEVEL")
    if level is None:
        return
    try:
        allowed = int(level) >= _NTLMV2_ONLY
    except ValueError:
        allowed = False
    if not allowed:
        raise SmtpUsageError(
            f"LM_COMPAT_LEVEL={level!r} in the environment asks for NTLMv1 or LM answers; "
            "mailwire sends NTLMv2 only: unset it or set it to 3, 4 or 5"
        )


@contextlib.contextmanager
def _failures(what: str) -> Iterator[None]:
    """Any failure of the NTLM library becomes an ``AuthenticationError``."""
    try:
        yield
    except SmtpError:
        raise
    except Exception as error:  # the library raises its own, ValueError, struct.error...
        raise AuthenticationError(f"NTLM: {what}: {error}") from None
