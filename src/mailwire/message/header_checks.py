"""No header value of a message object may turn into more header lines when it is written.

The email package writes a header from its decoded value: an encoded word that decodes to CR LF
(``=?utf-8?q?hi=0D=0AX-Injected=3A_y?=``) became a header line of its own on the wire in
Python before 3.13 (the CVE-2024-6923 class), and a raw value holding a bare CR or a form feed
is split into lines by the generator. So every header of every part is checked before it is
written: its name must be a field name, and its value, once unfolded and once its encoded words
are decoded, must hold no character that anything reads as a line break. A value that does is
refused (never stripped), on every Python version alike.
"""

from __future__ import annotations

import base64
import binascii
import re
from email.message import Message

from mailwire.errors import MessageError

_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
# The framer's line breaks (CR, LF, CRLF) followed by white space: folding, not a new line.
_FOLDING = re.compile(r"(?:\r\n|\r|\n)(?=[ \t])")
# CR and LF, and what str.splitlines (which the email generator uses) also breaks lines at.
_LINE_BREAK = re.compile(r"[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# RFC 2047 encoded words, as leniently as the email package reads them (white space inside the
# text is tolerated); no part may hold "?", so each try looks at most three "?" ahead.
_ENCODED_WORD = re.compile(r"=\?([^?\s]*+)\?([qQbB])\?([^?]*+)\?=")


def check_header_values(message: Message) -> None:
    """Raise ``MessageError`` naming the first header (of any part) that would add lines."""
    for part in message.walk():
        for name, value in part.raw_items():
            check_header(name, str(value))


def check_header(name: str, value: str) -> None:
    """Raise ``MessageError`` if ``name: value`` would be written as more than one field."""
    if not _FIELD_NAME.fullmatch(name):
        raise MessageError(f"the header name {name!r} is not a valid field name")
    unfolded = _FOLDING.sub("", value)
    if _LINE_BREAK.search(unfolded) or _LINE_BREAK.search(decode_encoded_words(unfolded)):
        raise MessageError(f"the {name} header's value holds a line break (CR, LF, or one "
                           "inside an =?...?= encoded word); refusing to send it, as it would "
                           "add header lines")


def decode_encoded_words(text: str) -> str:
    """``text`` with every RFC 2047 encoded word replaced by its decoded text (undecodable
    ones are left as they are)."""
    return _ENCODED_WORD.sub(_decoded, text) if "=?" in text else text


def _decoded(match: re.Match[str]) -> str:
    charset, encoding, encoded = match.groups()
    try:
        if encoding in "qQ":
            data = binascii.a2b_qp(encoded.encode("ascii", "replace"), header=True)
        else:
            data = base64.b64decode(encoded.encode("ascii", "replace") + b"==")
    except (binascii.Error, ValueError):
        return match.group()
    try:
        text = data.decode(charset.partition("*")[0], "replace")
    except LookupError:  # unknown, or not a text encoding
        text = data.decode("latin-1")
    # A charset that hides CR or LF from the decoder still carries the bytes.
    return text + ("\r" if (b"\r" in data or b"\n" in data) else "")
