"""Building the message ``mailwire send`` sends from its options: text, HTML, attachments.

The message is a stream of byte chunks. Text and HTML are small and written by the email
package; attachments are read and base64-encoded a block at a time as the message is sent, so a
file of any size costs a few hundred kilobytes of memory. Every header is checked like those of
any message object (no line break, also none inside an encoded word, e.g. in ``--subject``).

With ``--html`` and no body text the message is HTML only: an empty text alternative would be
what text-only readers show. Without either, the text body is empty.
"""

from __future__ import annotations

import base64
import email.generator
import email.policy
import io
import mimetypes
import secrets
from collections.abc import Iterator, Sequence
from email.message import EmailMessage, MIMEPart
from email.utils import formatdate
from pathlib import Path
from typing import Any

from mailwire.errors import MessageError, SmtpUsageError
from mailwire.message.address_list import addresses
from mailwire.message.email_objects import check_written_fields, make_message_id
from mailwire.message.header_checks import check_header_values
from mailwire.message.header_section import parse_header_section

_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
               "xz": "application/x-xz", "br": "application/x-brotli"}
DEFAULT_TYPE = "application/octet-stream"
_LINE_INPUT = 57  # bytes that make one 76-character base64 line
BASE64_BLOCK = _LINE_INPUT * 4096
CRLF = b"\r\n"


def compose(
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str | None,
    body: str | None,
    html: str | None,
    attachments: Sequence[Path],
) -> Iterator[bytes]:
    """The MIME message as chunks, with Date and Message-ID; Bcc recipients never appear."""
    policy = email.policy.SMTP.clone(utf8=_has_utf8_address([sender, *to, *cc]))
    message = EmailMessage(policy=policy)
    fields = {"From": sender, "To": ", ".join(to), "Cc": ", ".join(cc), "Subject": subject,
              "Date": formatdate(localtime=True), "Message-ID": make_message_id([sender], None)}
    for name, value in fields.items():
        if value:
            _set(message, name, value)
    for path in attachments:
        _check_readable(path)
    if not attachments:
        _set_content(message, body, html)
        return iter((_written(message, policy),))
    content = MIMEPart(policy=policy)
    _set_content(content, body, html)
    parts = [_attachment_headers(path, policy) for path in attachments]
    return _multipart(message, content, parts, attachments, policy)


def _multipart(message: EmailMessage, content: MIMEPart, parts: list[bytes],
               attachments: Sequence[Path],
               policy: email.policy.EmailPolicy[Any]) -> Iterator[bytes]:
    written_content = _written(content, policy)
    boundary = _boundary(written_content)
    _set(message, "MIME-Version", "1.0")
    _set(message, "Content-Type", "multipart/mixed")
    message.set_param("boundary", boundary)
    head = _header_lines(message, policy)
    delimiter = b"\r\n--" + boundary.encode("ascii")
    yield head + CRLF + delimiter[2:] + CRLF + written_content
    for path, part in zip(attachments, parts, strict=True):
        yield delimiter + CRLF + part + CRLF
        yield from _base64_lines(path)
    yield delimiter + b"--" + CRLF


def _set(message: MIMEPart, name: str, value: str) -> None:
    try:
        message[name] = value
    except ValueError as exc:  # the email package refuses CR and LF in values it is given
        raise SmtpUsageError(f"the {name} header cannot be set: {exc}") from None


def _set_content(part: MIMEPart, body: str | None, html: str | None) -> None:
    if html is not None and body is None:
        part.set_content(html, subtype="html")
        return
    part.set_content(body if body is not None else "")
    if html is not None:
        part.add_alternative(html, subtype="html")


def _attachment_headers(path: Path, policy: email.policy.EmailPolicy[Any]) -> bytes:
    part = MIMEPart(policy=policy)
    _set(part, "Content-Type", guess_type(path))
    try:
        part.add_header("Content-Disposition", "attachment", filename=path.name)
    except ValueError as exc:
        raise SmtpUsageError(f"the attachment name {path.name!r} cannot be sent: {exc}") from None
    _set(part, "Content-Transfer-Encoding", "base64")
    return _header_lines(part, policy)


def _header_lines(part: MIMEPart, policy: email.policy.EmailPolicy[Any]) -> bytes:
    """The header fields of ``part`` as the email package writes them, checked first."""
    check_header_values(part)
    lines = b"".join(policy.fold_binary(name, value) for name, value in part.raw_items())
    check_written_fields(parse_header_section(lines).names(),
                         [name.lower() for name, _value in part.raw_items()])
    return lines


def _written(part: MIMEPart, policy: email.policy.EmailPolicy[Any]) -> bytes:
    check_header_values(part)
    output = io.BytesIO()
    try:
        email.generator.BytesGenerator(output, policy=policy).flatten(part)
    except (UnicodeError, ValueError) as exc:
        raise MessageError(f"the message cannot be written: {exc}") from None
    return output.getvalue()


def _boundary(content: bytes) -> str:
    while True:
        boundary = f"=_mailwire_{secrets.token_hex(16)}"
        if boundary.encode("ascii") not in content:
            return boundary


def _base64_lines(path: Path) -> Iterator[bytes]:
    """The file as base64 lines (CRLF-terminated), a block at a time."""
    with path.open("rb") as handle:
        pending = b""
        while block := handle.read(BASE64_BLOCK):
            data = pending + block
            whole = len(data) - len(data) % _LINE_INPUT
            pending = data[whole:]
            if whole:
                yield base64.encodebytes(data[:whole]).replace(b"\n", CRLF)
        if pending:
            yield base64.encodebytes(pending).replace(b"\n", CRLF)


def _has_utf8_address(values: Sequence[str]) -> bool:
    """Whether an address (not a display name) is not ASCII: the headers must then be UTF-8."""
    return any(not address.isascii()
               for value in values if not value.isascii()
               for address in addresses(value, f"the address {value!r}"))


def _check_readable(path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise SmtpUsageError(f"cannot read the attachment {path}: "
                             f"{error.strerror or error}") from None


def guess_type(path: Path) -> str:
    """The MIME type by file name; compressed files are their compression's type."""
    kind, encoding = mimetypes.guess_type(path.name, strict=False)
    if encoding is not None:
        return _COMPRESSED.get(encoding, DEFAULT_TYPE)
    return kind or DEFAULT_TYPE


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SmtpUsageError(f"cannot read the {what} {path}: {error.strerror or error}") from None


def read_text(path: Path, what: str) -> str:
    data = read_file(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SmtpUsageError(f"the {what} {path} is not UTF-8 (byte {error.start})") from None
