"""Every exception mailwire raises, in one small tree.

    SmtpError                          base; ``reply``, ``code``, ``enhanced_code``, ``text``
    ├── SmtpUsageError (ValueError)    the caller asked for something impossible or unsafe:
    │   │                              CR/LF in an argument, a malformed address, a bad option
    │   └── MessageError               the message cannot be sent as it is (8-bit data with no
    │                                  8BITMIME, too large for the server's SIZE, no recipients)
    ├── SmtpConnectionError (ConnectionError)
    │   ├── ConnectionLostError        the server closed the connection
    │   ├── DeliveryUnknownError       lost after the end of data: the message may or may not
    │   │                              have been accepted
    │   └── ProxyError                 the proxy could not be used or could not reach the server;
    │       │                          ``proxy_code`` is the proxy's reply code where it gave one
    │       └── ProxyAuthenticationError  the proxy refused the credentials
    ├── SmtpTimeoutError (TimeoutError)  a phase did not finish in time; ``phase`` names it
    ├── SmtpSecurityError              TLS could not be set up as required, a certificate failed,
    │   │                              plaintext was injected, credentials would go unencrypted
    │   └── TlsNotSpokenError          the server answered the TLS handshake with something else
    ├── SmtpProtocolError              the server broke the protocol (garbage, oversize replies)
    ├── SmtpResponseError              the server answered with an error reply
    │   ├── GreetingRefusedError       the greeting itself was 4xx/5xx
    │   ├── SenderRefusedError         MAIL FROM refused; ``sender``
    │   ├── RecipientsRefusedError     every RCPT TO refused; ``refused``
    │   ├── DataRefusedError           DATA, or the message after its end, refused
    │   └── AuthenticationError        AUTH failed, or no mechanism could be agreed
    └── ConfigError                    a configuration file or variable is wrong

Exceptions that carry a server reply expose its code, enhanced status code and text. Timeout and
connection errors also inherit the matching builtin, so ``except TimeoutError`` works.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailwire.protocol.replies import Reply


class SmtpError(Exception):
    """Base class of every mailwire error."""

    def __init__(self, message: str, *, reply: Reply | None = None) -> None:
        if reply is not None:
            message = f"{message}: {reply.describe()}"
        super().__init__(message)
        self.reply = reply

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle any subclass whatever its constructor takes (results cross processes)."""
        return (_rebuild, (type(self), self.args, self.__dict__))

    @property
    def code(self) -> int | None:
        return None if self.reply is None else self.reply.code

    @property
    def enhanced_code(self) -> str | None:
        return None if self.reply is None else self.reply.enhanced_code

    @property
    def text(self) -> str | None:
        return None if self.reply is None else self.reply.text


def _rebuild(kind: type[SmtpError], args: tuple[Any, ...], state: dict[str, Any]) -> SmtpError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


class SmtpUsageError(SmtpError, ValueError):
    """The caller asked for something impossible or unsafe; nothing was sent for it."""


class MessageError(SmtpUsageError):
    """The message cannot be sent to this server as it is."""


class SmtpConnectionError(SmtpError, ConnectionError):
    """A connection could not be made or was lost."""


class ConnectionLostError(SmtpConnectionError):
    """The server closed the connection."""


class DeliveryUnknownError(SmtpConnectionError):
    """The connection failed after the end of data was sent, before the server's verdict.

    The server may have accepted the message; resending it may deliver it twice.
    """


class ProxyError(SmtpConnectionError):
    """The proxy was unreachable, refused us, or could not reach the server."""

    def __init__(self, message: str, *, proxy_code: int | None = None) -> None:
        super().__init__(message)
        self.proxy_code = proxy_code


class ProxyAuthenticationError(ProxyError):
    """The proxy refused the credentials, or required some and none were given."""


class SmtpTimeoutError(SmtpError, TimeoutError):
    """A phase of the conversation did not finish within its time bound."""

    def __init__(self, phase: str, seconds: float, where: str | None = None,
                 hint: str | None = None) -> None:
        message = f"timed out after {seconds:g} s during {phase}"
        if where:
            message += f" with {where}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)
        self.phase = phase
        self.seconds = seconds
        self.where = where


class SmtpSecurityError(SmtpError):
    """The connection cannot be made as secure as required."""


class TlsNotSpokenError(SmtpSecurityError):
    """The server answered the TLS handshake with something that is not TLS."""


class SmtpProtocolError(SmtpError):
    """The server broke the SMTP protocol."""


class SmtpResponseError(SmtpError):
    """The server answered with an error reply."""


class GreetingRefusedError(SmtpResponseError):
    """The server refused the session in its greeting."""


class SenderRefusedError(SmtpResponseError):
    """The server refused the envelope sender."""

    def __init__(self, sender: str, reply: Reply) -> None:
        super().__init__(f"sender <{sender}> refused", reply=reply)
        self.sender = sender


class RecipientsRefusedError(SmtpResponseError):
    """The server refused every recipient; ``refused`` maps each address to its reply."""

    def __init__(self, refused: Mapping[str, Reply]) -> None:
        first = next(iter(refused.values()), None)
        super().__init__(f"all {len(refused)} recipient(s) refused", reply=first)
        self.refused = dict(refused)


class DataRefusedError(SmtpResponseError):
    """The server refused DATA or the message after its end."""


class AuthenticationError(SmtpResponseError):
    """Authentication failed or no mechanism could be agreed."""


class ConfigError(SmtpError):
    """A configuration file or environment variable is wrong."""
