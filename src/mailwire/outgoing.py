"""``Outgoing``: a message together with the envelope to send it with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailwire.message import MessageInput


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message with an explicit envelope, for ``send_many`` inputs that need one.

    ``sender`` and ``recipients`` default to what the message's headers say.
    """

    message: MessageInput
    sender: str | None = None
    recipients: str | Iterable[str] | None = None
