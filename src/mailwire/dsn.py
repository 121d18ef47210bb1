"""Delivery status notifications (RFC 3461), with Aspose's names in Python casing.

``DeliveryNotificationOptions`` says when the receiving systems should report back
(``NOTIFY=``); ``ret`` whether a failure report carries the full message or its headers only
(``RET=FULL``/``HDRS``); ``envid`` an identifier that comes back in every report (``ENVID=``).
``Recipient`` carries per-recipient choices: its own ``notify`` and the original recipient
(``ORCPT=``). Values are sent as xtext, checked like every other command argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Flag, auto

from mailwire.errors import SmtpUsageError


class DeliveryNotificationOptions(Flag):
    """When delivery status notifications are wanted (``NOTIFY=``).

    ``NONE`` asks for nothing (the server's default applies); ``NEVER`` asks for none at all
    and cannot be combined with the others.
    """

    NONE = 0
    ON_SUCCESS = auto()
    ON_FAILURE = auto()
    DELAY = auto()
    NEVER = auto()

    @classmethod
    def parse(cls, value: DeliveryNotificationOptions | str | Iterable[str]
              ) -> DeliveryNotificationOptions:
        """From flags, or names (``"failure,delay"``, ``["ON_SUCCESS"]``, ``"never"``)."""
        if isinstance(value, DeliveryNotificationOptions):
            return value
        names = value.replace(";", ",").split(",") if isinstance(value, str) else list(value)
        result = cls.NONE
        for name in names:
            key = name.strip().upper().replace("-", "_")
            if not key:
                continue
            key = _ALIASES.get(key, key)
            try:
                result |= cls[key]
            except KeyError:
                raise SmtpUsageError(f"unknown delivery notification {name!r} (expected "
                                     "success, failure, delay or never)") from None
        return result

    def notify_value(self) -> str | None:
        """The ``NOTIFY=`` value, or None for ``NONE``."""
        if not self:
            return None
        if self & DeliveryNotificationOptions.NEVER:
            if self != DeliveryNotificationOptions.NEVER:
                raise SmtpUsageError("NEVER cannot be combined with other delivery "
                                     "notifications")
            return "NEVER"
        names = [("SUCCESS", DeliveryNotificationOptions.ON_SUCCESS),
                 ("FAILURE", DeliveryNotificationOptions.ON_FAILURE),
                 ("DELAY", DeliveryNotificationOptions.DELAY)]
        return ",".join(name for name, flag in names if self & flag)


_ALIASES = {"SUCCESS": "ON_SUCCESS", "FAILURE": "ON_FAILURE"}
RETURNS = {"full": "FULL", "headers": "HDRS", "hdrs": "HDRS"}


def return_value(ret: str | None) -> str | None:
    """The ``RET=`` value for ``"full"`` or ``"headers"`` (None: not asked for)."""
    if ret is None:
        return None
    try:
        return RETURNS[ret.strip().lower()]
    except (KeyError, AttributeError):
        raise SmtpUsageError(f"ret must be 'full' or 'headers', not {ret!r}") from None


@dataclass(frozen=True, slots=True)
class Recipient:
    """An envelope recipient with its own delivery status notification choices.

    ``notify`` replaces the message's for this recipient; ``orcpt`` is the original recipient
    address to report (``ORCPT=rfc822;...``), for a recipient that an alias or a forward
    rewrote before this message.
    """

    address: str
    notify: DeliveryNotificationOptions | str | None = None
    orcpt: str | None = None

    def __str__(self) -> str:
        return self.address
