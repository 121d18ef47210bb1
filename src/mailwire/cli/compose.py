"""Building the message ``mailwire send`` sends from its options: text, HTML, attachments."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from mailwire.errors import SmtpUsageError

_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
               "xz": "application/x-xz", "br": "application/x-brotli"}
DEFAULT_TYPE = "application/octet-stream"


def compose(
    *,
    sender: str,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str | None,
    body: str | None,
    html: str | None,
    attachments: Sequence[Path],
) -> EmailMessage:
    """A MIME message with Date and Message-ID; Bcc recipients never appear in it."""
    message = EmailMessage()
    message["From"] = sender
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if subject is not None:
        message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(body if body is not None else "")
    if html is not None:
        message.add_alternative(html, subtype="html")
    for path in attachments:
        maintype, subtype = guess_type(path).split("/", 1)
        message.add_attachment(read_file(path, "attachment"), maintype=maintype,
                               subtype=subtype, filename=path.name)
    return message


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
