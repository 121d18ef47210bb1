"""The message ``send_mail`` builds from its arguments: text, and HTML as an alternative."""

from __future__ import annotations

from collections.abc import Iterable
from email.message import EmailMessage

from mailwire.errors import SmtpUsageError
from mailwire.message.header_checks import check_header_values


def simple_message(
    sender: str, recipients: str | Iterable[str], subject: str, body: str, html: str | None
) -> EmailMessage:
    """A text message, with an HTML alternative when ``html`` is given. A subject or address
    that holds a line break, also inside an encoded word, is refused (``SmtpUsageError``)."""
    message = EmailMessage()
    fields = {"From": sender,
              "To": ", ".join([recipients] if isinstance(recipients, str) else recipients),
              "Subject": subject}
    for name, value in fields.items():
        try:
            message[name] = value
        except ValueError as exc:  # the email package refuses CR and LF in values it is given
            raise SmtpUsageError(f"the {name} header cannot be set: {exc}") from None
    check_header_values(message)
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message
