"""``mailwire send``: compose a message (or take an .eml file) and send it.

Prints one line per recipient (accepted or refused, with the server's reply), the server's
final reply and how the connection was made. Exit status 5 when any recipient was refused.
"""

from __future__ import annotations

import argparse
import sys
from email.utils import getaddresses
from pathlib import Path

from mailwire.cli.compose import compose, read_text
from mailwire.cli.connection import (
    FILE,
    add_connection_options,
    announce_connection,
    client_from_args,
    settings_from_args,
)
from mailwire.cli.exit_codes import EPILOG, ExitCode
from mailwire.cli.progress import progress
from mailwire.cli.terminal import printable
from mailwire.errors import AuthenticationError, RecipientsRefusedError, SmtpUsageError
from mailwire.message import MessageInput
from mailwire.protocol.addresses import parse_mailbox
from mailwire.results import ConnectionInfo, SendResult


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parent: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "send", parents=[parent], allow_abbrev=False,
        help="send a message",
        description="Compose a message (or take an .eml file) and send it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    message = parser.add_argument_group("message")
    message.add_argument("--from", dest="sender", metavar="ADDR",
                         help="sender (default: the configuration's sender)")
    message.add_argument("--to", action="append", default=[], metavar="ADDR",
                         help="recipient (repeatable)")
    message.add_argument("--cc", action="append", default=[], metavar="ADDR",
                         help="copy recipient (repeatable)")
    message.add_argument("--bcc", action="append", default=[], metavar="ADDR",
                         help="blind copy recipient, not shown in the headers (repeatable)")
    message.add_argument("--subject", help="subject")
    body = message.add_mutually_exclusive_group()
    body.add_argument("--body", metavar="TEXT", help="plain text body")
    body.add_argument("--body-file", type=FILE, metavar="FILE",
                      help="plain text body from a UTF-8 file")
    html = message.add_mutually_exclusive_group()
    html.add_argument("--html", metavar="HTML", help="HTML alternative of the body")
    html.add_argument("--html-file", type=FILE, metavar="FILE",
                      help="HTML alternative from a UTF-8 file")
    message.add_argument("--attach", action="append", default=[], type=FILE, metavar="FILE",
                         help="attach a file; its type is guessed from its name (repeatable)")
    message.add_argument("--envid", metavar="ID",
                         help="an identifier that comes back in delivery status notifications")
    message.add_argument("--require-tls", action="store_true",
                         help="REQUIRETLS (RFC 8689): the message must travel over TLS all the "
                              "way; refused before sending when that cannot be asked for")
    message.add_argument("--eml", type=FILE, metavar="FILE",
                         help="send this RFC 5322 file as it is; the envelope comes from its "
                              "headers unless --from/--to/--cc/--bcc are given")
    add_connection_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    _check_message_options(args)
    settings = settings_from_args(args)
    sender = args.sender or settings.sender
    recipients = [*args.to, *args.cc, *args.bcc]
    message: MessageInput
    if args.eml:
        message = Path(args.eml)
    else:
        if not sender:
            raise SmtpUsageError("no sender: give --from, or set sender in the configuration")
        if not recipients:
            raise SmtpUsageError("no recipients: give --to, --cc or --bcc")
        message = compose(
            sender=sender, to=args.to, cc=args.cc, subject=args.subject,
            body=read_text(Path(args.body_file), "body file") if args.body_file else args.body,
            html=read_text(Path(args.html_file), "HTML file") if args.html_file else args.html,
            attachments=[Path(path) for path in args.attach],
        )
    client = client_from_args(args, settings)
    where = f"{client.host}:{client.effective_port}"
    envelope_sender = address_of(sender) if sender else None
    envelope_recipients = [address_of(recipient) for recipient in recipients] or None
    try:
        with progress(f"sending to {where}", enabled=not args.verbose), client:
            announce_connection(client)
            result = client.send(message, sender=envelope_sender,
                                 recipients=envelope_recipients, envid=args.envid,
                                 require_tls=args.require_tls)
            info = client.connection_info
    except RecipientsRefusedError as error:
        for address, reply in error.refused.items():
            print(printable(f"refused   {address}  {reply.describe()}"))
        raise
    except AuthenticationError as error:
        if settings.password_source is None:
            raise
        raise AuthenticationError(f"{error} (password from {settings.password_source})",
                                  reply=None) from error
    _report(result, info, where)
    return ExitCode.OK if result.all_accepted else ExitCode.REFUSED


def address_of(mailbox: str) -> str:
    """The address of ``Name <address>`` (the envelope has no display names)."""
    if "<" not in mailbox:
        return parse_mailbox(mailbox.strip()).text
    addresses = [address for _name, address in getaddresses([mailbox]) if address]
    if len(addresses) != 1 or addresses[0] not in mailbox:
        raise SmtpUsageError(f"not one email address: {mailbox!r}")
    return parse_mailbox(addresses[0]).text


def _check_message_options(args: argparse.Namespace) -> None:
    if not args.eml:
        return
    composed = {"--subject": args.subject, "--body": args.body, "--body-file": args.body_file,
                "--html": args.html, "--html-file": args.html_file, "--attach": args.attach}
    given = [name for name, value in composed.items() if value]
    if given:
        raise SmtpUsageError(f"--eml sends the file as it is; it cannot be combined with "
                             f"{', '.join(given)}")


def _report(result: SendResult, info: ConnectionInfo | None, where: str) -> None:
    lines = [f"accepted  {address}" for address in result.accepted]
    lines += [f"refused   {address}  {reply.describe()}"
              for address, reply in result.refused.items()]
    lines.append(f"server    {result.reply.describe()}")
    if info is not None:
        lines.append(f"via       {where}, {describe_connection(info)}")
    for line in lines:
        print(printable(line))
    if result.refused:
        print(f"mailwire: {len(result.refused)} of {len(result.refused) + len(result.accepted)} "
              "recipients refused; the message went to the others", file=sys.stderr)


def describe_connection(info: ConnectionInfo) -> str:
    parts = [info.security.name]
    if info.tls_version:
        parts.append(f"{info.tls_version} {info.cipher or ''}".strip())
    parts.append(f"AUTH {info.auth_mechanism}" if info.auth_mechanism else "no AUTH")
    return ", ".join(parts)
