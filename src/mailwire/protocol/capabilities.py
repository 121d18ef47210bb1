"""What a server offers, parsed from its EHLO reply.

The first reply line is the server's greeting name; every further line is ``KEYWORD [params]``.
Lines that are not a valid keyword are ignored rather than trusted, and a malformed SIZE value is
treated as no limit being announced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailwire.protocol.replies import Reply

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*")
_SIZE_VALUE = re.compile(r"[0-9]{1,20}")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """EHLO keywords (upper case) mapped to their parameter text."""

    extensions: dict[str, str] = field(default_factory=dict)
    esmtp: bool = True

    @classmethod
    def from_ehlo(cls, reply: Reply) -> Capabilities:
        extensions: dict[str, str] = {}
        for line in reply.lines[1:]:
            keyword, _, parameters = line.strip().partition(" ")
            if keyword.upper().startswith("AUTH="):
                keyword, parameters = "AUTH", keyword[5:] + " " + parameters
            if not _KEYWORD.fullmatch(keyword):
                continue
            keyword = keyword.upper()
            if keyword == "AUTH" and "AUTH" in extensions:
                parameters = extensions["AUTH"] + " " + parameters
            extensions[keyword] = parameters.strip()
        return cls(extensions)

    @classmethod
    def none(cls) -> Capabilities:
        """A server that answered HELO only: no extensions at all."""
        return cls({}, esmtp=False)

    def __contains__(self, keyword: str) -> bool:
        return keyword.upper() in self.extensions

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.extensions

    @property
    def starttls(self) -> bool:
        return "STARTTLS" in self.extensions

    @property
    def eightbitmime(self) -> bool:
        return "8BITMIME" in self.extensions

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in self.extensions

    @property
    def chunking(self) -> bool:
        return "CHUNKING" in self.extensions

    @property
    def binarymime(self) -> bool:
        """BINARYMIME (RFC 3030), which goes with BDAT only: offered together with CHUNKING."""
        return "BINARYMIME" in self.extensions and "CHUNKING" in self.extensions

    @property
    def dsn(self) -> bool:
        return "DSN" in self.extensions

    @property
    def enhanced_status_codes(self) -> bool:
        return "ENHANCEDSTATUSCODES" in self.extensions

    @property
    def size(self) -> int | None:
        """The SIZE limit in bytes; 0 when SIZE is offered without a limit, None when absent."""
        if "SIZE" not in self.extensions:
            return None
        value = self.extensions["SIZE"].split(" ", 1)[0]
        return int(value) if _SIZE_VALUE.fullmatch(value) else 0

    @property
    def auth_mechanisms(self) -> tuple[str, ...]:
        """The offered SASL mechanisms, upper case, in the server's order, without repeats."""
        names = self.extensions.get("AUTH", "").upper().split()
        return tuple(dict.fromkeys(name for name in names if _KEYWORD.fullmatch(name)))
