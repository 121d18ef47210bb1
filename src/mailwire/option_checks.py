"""Checking what is given to a client's attributes: ports, durations and names.

Aspose.Email's clients count time in milliseconds and take ``(host, user, password)`` as a
constructor overload; mailwire counts seconds and takes ``(host, port, username, password)``.
Both habits would otherwise pass silently: ``timeout=60000`` meaning 16.7 hours, ``"user"``
taken for a port. So a duration must be a positive, finite number, and one above
``PLAUSIBLE_SECONDS`` warns (``SuspiciousValueWarning``); a port must be a whole number from 1
to 65535 (or None), and a string given as the port gets an error that shows the keyword form.
"""

from __future__ import annotations

import math

from mailwire.errors import SmtpUsageError
from mailwire.warning_categories import SuspiciousValueWarning, warn

PLAUSIBLE_SECONDS = 600.0
"""Ten minutes: the longest timeout RFC 5321 (4.5.3.2) asks a client to wait, for the reply to
the end of the message data. A value above it is more likely milliseconds."""


def seconds(name: str, value: object) -> float:
    """``value`` as a duration in seconds, or a SmtpUsageError naming the attribute."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SmtpUsageError(f"{name} is a number of seconds, not {type(value).__name__} "
                             f"{value!r}")
    if not math.isfinite(value) or value <= 0:
        raise SmtpUsageError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def warn_if_milliseconds(name: str, value: float) -> None:
    if value > PLAUSIBLE_SECONDS:
        warn(f"{name}={value:g} is {_as_duration(value)}: mailwire's durations are seconds "
             f"(Aspose.Email's are milliseconds); for {value:g} ms write "
             f"{name}={value / 1000:g}", SuspiciousValueWarning)


def port(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise SmtpUsageError(f"port must be a number from 1 to 65535 or None, got {value!r}")
    return value


def misplaced_port(host: object, port_value: object, username: object) -> SmtpUsageError | None:
    """The error for ``SmtpClient(host, "user", "password")`` (Aspose's host, user, password
    order): the arguments are host, port, username, password, so show the keyword form."""
    if not isinstance(port_value, str):
        return None
    password = ", password=..." if username is not None else ""
    return SmtpUsageError(
        f"port must be a number, got the string {port_value!r}: the positional arguments are "
        f"(host, port, username, password, security); for a user name without a port write "
        f"SmtpClient({host!r}, username={port_value!r}{password})")


def _as_duration(value: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:g} seconds"
