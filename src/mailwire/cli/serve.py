"""``mailwire serve``: the development SMTP server, capturing every message as an .eml file.

Listens on 127.0.0.1 (port 1025 by default, 0 for any free port; the first line printed says
which), saves each message into ``--maildir`` and prints one line for it. ``--tls starttls`` or
``--tls implicit`` serve a certificate from a throw-away authority whose CA file is printed (or
kept in ``--cert-dir`` across runs) so clients can verify it. ``--user NAME`` turns on AUTH with
the password from ``--password-env VAR``, ``--ask-password``, or a random one that is printed.
The key, the CA and the captured messages are readable by their owner only. Runs until Ctrl-C
or SIGTERM, ``--count N`` messages, or ``--exit-after SECONDS``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mailwire.cli import server_extra
from mailwire.cli.connection import PORT, SECONDS, RefusePassword

DEFAULT_PORT = 1025
DEFAULT_MAILDIR = "mailwire-mail"
TLS_CHOICES = ("none", "starttls", "implicit")
"""The values of ``mailwire.devserver.TlsMode``, without importing the server to list them."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parent: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "serve", parents=[parent], allow_abbrev=False,
        help="run a local development SMTP server",
        description=__doc__.split("\n\n", 1)[1].replace("``", "") if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_listen_port, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--maildir", type=Path, default=Path(DEFAULT_MAILDIR),
                        help=f"folder for the .eml files (default ./{DEFAULT_MAILDIR})")
    parser.add_argument("--tls", choices=TLS_CHOICES, default="none",
                        help="offer STARTTLS, or TLS from the first byte (default none)")
    parser.add_argument("--cert-dir", type=Path, metavar="DIR",
                        help="keep the generated CA and certificate here and reuse them "
                             "(default: a temporary folder, removed at exit)")
    parser.add_argument("--hostname", default="localhost",
                        help="the name in the greeting (default localhost)")
    parser.add_argument("--user", metavar="NAME", help="require AUTH as this user")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password-env", metavar="VAR",
                        help="read the user's password from this environment variable "
                             "(default: a random password, printed)")
    secret.add_argument("--ask-password", action="store_true",
                        help="prompt for the user's password (or read the first line of "
                             "standard input when it is not a terminal)")
    secret.add_argument("--password", nargs="?", action=RefusePassword,
                        help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, metavar="N", help="stop after N messages")
    parser.add_argument("--exit-after", type=SECONDS, metavar="SECONDS",
                        help="stop after this many seconds")
    parser.set_defaults(run=run)


def _listen_port(text: str) -> int:
    return 0 if text.strip() == "0" else PORT(text)


def run(args: argparse.Namespace) -> int:
    server_extra.load("serve")
    from mailwire.cli import serving

    return serving.run(args)
