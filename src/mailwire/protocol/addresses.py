"""One strict parser for envelope addresses (RFC 5321 section 4.1.2, RFC 6531 for UTF-8).

Both the envelope given by the caller and the addresses taken from message headers go through
``parse_mailbox``, so what is sent as MAIL/RCPT is exactly what was validated.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

from mailwire.errors import SmtpUsageError

MAX_LOCAL_PART = 64
MAX_DOMAIN = 255

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
_UTF8_NON_ASCII = r"\u0080-\U0010ffff"
_DOT_STRING = re.compile(rf"[{_ATEXT}{_UTF8_NON_ASCII}]+(?:\.[{_ATEXT}{_UTF8_NON_ASCII}]+)*")
_QUOTED_STRING = re.compile(rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_UTF8_NON_ASCII}]|\\[\x20-\x7e])*"')
_LABEL = re.compile(rf"[A-Za-z0-9{_UTF8_NON_ASCII}](?:[A-Za-z0-9\-{_UTF8_NON_ASCII}]*"
                    rf"[A-Za-z0-9{_UTF8_NON_ASCII}])?")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9\-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+")


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A validated envelope address; ``needs_smtputf8`` when it has non-ASCII characters."""

    text: str

    @property
    def needs_smtputf8(self) -> bool:
        return not self.text.isascii()

    def __str__(self) -> str:
        return self.text


@functools.lru_cache(maxsize=4096)
def parse_mailbox(text: str, *, allow_null: bool = False) -> Mailbox:
    """Validate ``text`` as ``local-part@domain`` (angle brackets optional) or raise."""
    if _CONTROL.search(text):
        raise SmtpUsageError(f"address {text!r} contains a control character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SmtpUsageError(f"address {text!r} is not valid Unicode") from None
    candidate = text.strip(" ")
    if candidate.startswith("<") and candidate.endswith(">"):
        candidate = candidate[1:-1]
    if candidate == "" and allow_null:
        return Mailbox("")
    if not candidate:
        raise SmtpUsageError("empty address")
    at = candidate.rfind("@")
    if at <= 0:
        raise SmtpUsageError(f"address {text!r} has no local part and domain")
    local, domain = candidate[:at], candidate[at + 1 :]
    if not (_DOT_STRING.fullmatch(local) or _QUOTED_STRING.fullmatch(local)):
        raise SmtpUsageError(f"address {text!r} has an invalid local part")
    if len(local.encode()) > MAX_LOCAL_PART:
        raise SmtpUsageError(f"address {text!r}: local part longer than {MAX_LOCAL_PART} octets")
    if not is_valid_domain(domain):
        raise SmtpUsageError(f"address {text!r} has an invalid domain")
    return Mailbox(candidate)


def is_valid_domain(domain: str) -> bool:
    """A host name (labels, U-labels allowed) or an address literal such as ``[192.0.2.1]``."""
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        if _IPV4.fullmatch(literal):
            return True
        if literal[:5].upper() == "IPV6:":
            try:
                ipaddress.IPv6Address(literal[5:])
            except ValueError:
                return False
            return True
        return _GENERAL_LITERAL.fullmatch(literal) is not None
    if not domain or len(domain.encode("utf-8", "surrogatepass")) > MAX_DOMAIN:
        return False
    return all(_LABEL.fullmatch(label) and len(label) <= 63 for label in domain.split("."))
