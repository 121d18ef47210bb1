"""Wrappers for secrets: passwords, tokens and the AUTH payloads computed from them.

A ``Secret`` holds text (a password, a token) and a ``SecretBytes`` holds what goes on the wire
(an AUTH line, a SASL response). Their ``repr`` and ``str`` never show what they hold, so a log
line, an exception message or an error reporter that records the local variables of each frame
(Sentry and the like store ``repr`` of every local) shows ``<redacted>`` instead. The value is
reached only on purpose: ``reveal()``, ``utf8()``, or by using a ``SecretBytes`` as the bytes it
is when it is written to the socket.
"""

from __future__ import annotations

import hmac
import re
from typing import Final

from mailwire.errors import SmtpUsageError

REDACTED: Final = "<redacted>"
_SURROGATE = re.compile("[\ud800-\udfff]")


class Secret:
    """Text that must not be shown: ``repr``/``str`` give ``<redacted>``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise SmtpUsageError(f"a password or token must be text (str), not "
                                 f"{type(value).__name__}")
        self._value = value

    @classmethod
    def of(cls, value: str | Secret | None) -> Secret | None:
        """``value`` wrapped (a ``Secret`` stays as it is; None stays None)."""
        if value is None or isinstance(value, Secret):
            return value
        return cls(value)

    def reveal(self) -> str:
        """The text itself: use it in the expression that needs it, never keep it in a local."""
        return self._value

    def utf8(self, what: str) -> bytes:
        """The text as UTF-8, or a ``SmtpUsageError`` naming ``what`` (never the text).

        Text read from an environment variable or a file holding bytes that are not UTF-8
        carries surrogate escapes, which cannot be encoded; the error says so.
        """
        self.check_utf8(what)
        return self._value.encode("utf-8")

    def check_utf8(self, what: str) -> None:
        """Raise ``SmtpUsageError`` (naming ``what``, not the text) unless it encodes."""
        if _SURROGATE.search(self._value) is not None:
            raise SmtpUsageError(
                f"the {what} is not valid UTF-8 text (it holds bytes that are not UTF-8, as "
                "an environment variable or a file in another encoding gives); it was not sent"
            )

    def __contains__(self, text: str) -> bool:
        return text in self._value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8", "surrogatepass"),
                                   other._value.encode("utf-8", "surrogatepass"))

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


class SecretBytes(bytes):
    """Bytes that carry a secret on their way to the wire; ``repr``/``str`` are redacted.

    They are ``bytes`` to the transports that write them; slicing or joining them gives plain
    bytes, so keep them whole until they are written.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SecretBytes({REDACTED}, {len(self)} bytes)"

    __str__ = __repr__


def secret_bytes(data: bytes | None) -> SecretBytes | None:
    """``data`` as ``SecretBytes`` (already wrapped data and None are returned as they are)."""
    if data is None or isinstance(data, SecretBytes):
        return data
    return SecretBytes(data)
