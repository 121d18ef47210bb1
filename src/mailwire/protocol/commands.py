"""SMTP commands as bytes, with every argument checked after encoding.

No argument may carry CR, LF, NUL, another C0 control character or DEL: such a byte could end the
command early and start a second one (command injection). The check runs on the final encoded
bytes, so a lossy conversion cannot smuggle a line break past it. Bad input is rejected, never
stripped.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable

from mailwire.errors import SmtpUsageError
from mailwire.protocol.addresses import Mailbox, is_valid_domain

_FORBIDDEN = re.compile(rb"[\x00-\x1f\x7f]")
_PARAMETER = re.compile(rb"[A-Za-z0-9][A-Za-z0-9\-]*(?:=[\x21-\x3c\x3e-\x7e\x80-\xff]+)?")
_MECHANISM = re.compile(rb"[A-Z0-9\-_]{1,20}")
_XTEXT_SAFE = frozenset(range(0x21, 0x7F)) - {ord("+"), ord("=")}

CRLF = b"\r\n"
DATA = b"DATA\r\n"
RSET = b"RSET\r\n"
NOOP = b"NOOP\r\n"
QUIT = b"QUIT\r\n"
STARTTLS = b"STARTTLS\r\n"
AUTH_CANCEL = b"*\r\n"


def checked(argument: str | bytes, what: str) -> bytes:
    """The argument as UTF-8 bytes, or an error when it holds a control character."""
    try:
        encoded = argument.encode("utf-8") if isinstance(argument, str) else bytes(argument)
    except UnicodeEncodeError:
        raise SmtpUsageError(f"{what} is not valid Unicode") from None
    bad = _FORBIDDEN.search(encoded)
    if bad is not None:
        raise SmtpUsageError(f"{what} contains the control character {bad.group()!r}")
    return encoded


def ehlo(name: str) -> bytes:
    return b"EHLO " + _hello_name(name) + CRLF


def helo(name: str) -> bytes:
    return b"HELO " + _hello_name(name) + CRLF


def _hello_name(name: str) -> bytes:
    encoded = checked(name, "EHLO name")
    if not encoded.isascii() or not is_valid_domain(name):
        raise SmtpUsageError(f"EHLO name {name!r} is not a domain name or address literal")
    return encoded


def mail(sender: Mailbox, parameters: Iterable[str] = ()) -> bytes:
    return (b"MAIL FROM:<" + checked(sender.text, "sender") + b">" + _parameters(tuple(parameters))
            + CRLF)


def rcpt(recipient: Mailbox, parameters: Iterable[str] = ()) -> bytes:
    address = checked(recipient.text, "recipient")
    return b"RCPT TO:<" + address + b">" + _parameters(tuple(parameters)) + CRLF


@functools.lru_cache(maxsize=1024)
def _parameters(parameters: tuple[str, ...]) -> bytes:
    encoded = b""
    for parameter in parameters:
        raw = checked(parameter, "command parameter")
        if not _PARAMETER.fullmatch(raw):
            raise SmtpUsageError(f"malformed command parameter {parameter!r}")
        encoded += b" " + raw
    return encoded


def xtext(value: str) -> str:
    """Encode a DSN value (ENVID, ORCPT) as RFC 3461 xtext."""
    return "".join(
        chr(byte) if byte in _XTEXT_SAFE else f"+{byte:02X}" for byte in value.encode("utf-8")
    )


def bdat(size: int, *, last: bool) -> bytes:
    if size < 0:
        raise SmtpUsageError("BDAT size must not be negative")
    return b"BDAT %d%s\r\n" % (size, b" LAST" if last else b"")


def auth(mechanism: str, initial_response: bytes | None) -> bytes:
    """``AUTH MECHANISM [initial-response]``; an empty initial response is sent as ``=``."""
    name = checked(mechanism, "mechanism name")
    if not _MECHANISM.fullmatch(name):
        raise SmtpUsageError(f"malformed mechanism name {mechanism!r}")
    if initial_response is None:
        return b"AUTH " + name + CRLF
    return b"AUTH " + name + b" " + (_base64(initial_response) or b"=") + CRLF


def auth_response(response: bytes) -> bytes:
    """One SASL continuation line: the response in base64 (empty line for an empty one)."""
    return _base64(response) + CRLF


def _base64(data: bytes) -> bytes:
    return base64.b64encode(data)
