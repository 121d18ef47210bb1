"""``mailwire demo``: the whole job on this machine, with no account and no network.

Starts a development server on 127.0.0.1 (a free port) with STARTTLS and AUTH (a random
password, a throw-away certificate authority), sends a real message through it with
``SmtpClient`` in AUTO mode trusting that authority, and prints what the server received and
how the client connected: the security mode AUTO chose, the TLS version and the SASL mechanism.
Add ``-v`` to see the SMTP conversation (the password redacted).
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

from mailwire.cli import server_extra
from mailwire.cli.exit_codes import ExitCode
from mailwire.cli.send import describe_connection
from mailwire.client import SmtpClient
from mailwire.results import ConnectionInfo, SendResult
from mailwire.security import SecurityOptions

if TYPE_CHECKING:
    from mailwire.devserver import ReceivedMessage

USER = "demo"
SENDER = "demo@example.com"
RECIPIENTS = ("alice@example.com", "bob@example.com")
SHOWN_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parent: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "demo", parents=[parent], allow_abbrev=False,
        help="send a message through a local server and show it",
        description=__doc__.split("\n\n", 1)[1].replace("``", "") if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(run=run)


def run(_args: argparse.Namespace) -> int:
    devserver = server_extra.load("demo")
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="mailwire-demo-") as folder:
        certificates = devserver.Certificates.generate(Path(folder) / "tls")
        server = devserver.DevServer(tls=devserver.TlsMode.STARTTLS,
                                     certificates=certificates, credentials={USER: password},
                                     maildir=Path(folder) / "mail")
        with server:
            print(f"server    127.0.0.1:{server.port}, STARTTLS, AUTH required "
                  f"(user {USER!r}, random password), certificate from a throw-away CA")
            print(f"client    SmtpClient('127.0.0.1', {server.port}, {USER!r}, <password>, "
                  f"SecurityOptions.AUTO, ca_file='.../ca.pem')")
            with SmtpClient("127.0.0.1", server.port, USER, password, SecurityOptions.AUTO,
                            ca_file=str(certificates.ca_file)) as client:
                result = client.send(_message())
                info = client.connection_info
            received = server.wait_for_messages(1)[0]
    _report(result, info, received)
    return ExitCode.OK


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"mailwire demo <{SENDER}>"
    message["To"] = ", ".join(RECIPIENTS)
    message["Subject"] = "Hello from mailwire"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content("This message went through a real SMTP server on 127.0.0.1,\n"
                        "over STARTTLS, after SASL authentication.\n")
    message.add_attachment(b"mailwire demo attachment\n", maintype="text", subtype="plain",
                           filename="hello.txt")
    return message


def _report(result: SendResult, info: ConnectionInfo | None, received: ReceivedMessage) -> None:
    if info is not None:
        chosen = f"{info.security.name} (chosen by AUTO)"
        print(f"mode      {chosen}; {describe_connection(info).split(', ', 1)[1]}")
    print(f"sent      accepted {', '.join(result.accepted)}; server said "
          f"{result.reply.describe()}")
    print("\nthe server received:")
    print(f"  envelope  MAIL FROM:<{received.mail_from}>  RCPT TO:"
          + ", ".join(f"<{address}>" for address in received.rcpt_tos))
    print(f"  session   EHLO {received.helo_name}, {received.tls_version or 'no TLS'}, "
          f"AUTH {received.auth_mechanism} as {received.auth_user!r}")
    print(f"  size      {len(received.data)} bytes")
    headers = BytesHeaderParser(policy=default_policy).parsebytes(received.data)
    for name in SHOWN_HEADERS:
        value = headers.get(name)
        if value is not None:
            print(f"  {name + ':':<13} {value}")
    print("\nnext: `mailwire serve` keeps such a server running; `mailwire send --help`.")
