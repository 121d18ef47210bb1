"""LOGIN: the user name and the password, each in answer to a server prompt."""

from __future__ import annotations

from mailwire.auth.mechanism import Mechanism, SaslFlow, SmtpKnownAuthenticationType, register


@register
class Login(Mechanism):
    flag = SmtpKnownAuthenticationType.LOGIN
    strength = 10

    def flow(self) -> SaslFlow:
        prompt = yield None
        if prompt is None:
            return
        prompt = yield self.credentials.username.encode()
        if prompt is None:
            return
        yield self.password.encode()
