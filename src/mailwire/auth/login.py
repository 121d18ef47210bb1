"""LOGIN: the user name and the password, each in answer to a server prompt.

No initial response: ``AUTH LOGIN <user>`` saves a round trip and many servers take it, but
LOGIN is not standardized (an expired draft and Microsoft's MS-XLOGIN, where it is optional),
and it is chosen only when nothing better is offered, which is where old servers are.
"""

from __future__ import annotations

from mailwire.auth.mechanism import Mechanism, SaslFlow, SmtpKnownAuthenticationType, register
from mailwire.auth.secret import SecretBytes


@register
class Login(Mechanism):
    flag = SmtpKnownAuthenticationType.LOGIN

    def flow(self) -> SaslFlow:
        prompt = yield None
        if prompt is None:
            return
        prompt = yield SecretBytes(self.credentials.username.encode())
        if prompt is None:
            return
        yield SecretBytes(self.password_secret.utf8("password"))
