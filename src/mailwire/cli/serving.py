"""Running ``mailwire serve`` (see ``mailwire.cli.serve`` for its options): the development
server, its certificates and password, its announcement and a line per message. Imported
only once the ``server`` extra is known to be installed."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from types import FrameType

from mailwire.cli import password_input, tracing
from mailwire.cli.exit_codes import ExitCode
from mailwire.cli.terminal import printable
from mailwire.devserver import Certificates, DevServer, ReceivedMessage, TlsMode
from mailwire.devserver.certificates import CA_FILE_NAME, CERT_FILE_NAME, KEY_FILE_NAME
from mailwire.errors import ConfigError

SERVER_LOGGER = "mail.log"
STOP_GRACE = 0.2
"""After the last message of ``--count``, time for the client's reply and QUIT to go through."""


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise ConfigError("--count must be at least 1")
    _quiet_server_log(args.verbose)
    tls = TlsMode(args.tls)
    password = _password(args)
    stop = threading.Event()
    received = _Counter(args.count, stop)
    with _stop_on_sigterm(stop), ExitStack() as stack:
        certificates = None
        context = None
        if tls is not TlsMode.NONE:
            directory = args.cert_dir or Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="mailwire-serve-")))
            certificates, context = _certificates(directory)
        server = DevServer(
            host=args.host, port=args.port, hostname=args.hostname, tls=tls,
            ssl_context=context, certificates=certificates,
            credentials={args.user: password} if args.user and password else None,
            auth_require_tls=tls is not TlsMode.NONE,
            maildir=args.maildir.resolve(), on_message=received,
        )
        try:
            server.start()
        except OSError as error:
            raise ConfigError(f"cannot listen on {args.host}:{args.port}: "
                              f"{error.strerror or error}") from None
        stack.callback(server.stop)
        _announce(args, server, certificates, password)
        _wait(stop, args.exit_after)
        if received.count and args.count and received.count >= args.count:
            time.sleep(STOP_GRACE)
    print(f"mailwire serve: stopped after {received.count} message(s)", flush=True)
    return ExitCode.OK


def _quiet_server_log(verbosity: int) -> None:
    """aiosmtpd logs a client's garbage (a TLS probe on a plaintext port, say) as a warning;
    show its log only with ``-v`` (connections), ``-vv`` (every line, AUTH included)."""
    if verbosity:
        tracing.enable_logger(SERVER_LOGGER, level=logging.INFO if verbosity == 1
                              else logging.DEBUG)
    else:
        logging.getLogger(SERVER_LOGGER).setLevel(logging.ERROR)


def _password(args: argparse.Namespace) -> str | None:
    if (args.password_env or args.ask_password) and not args.user:
        raise ConfigError("--password-env and --ask-password need --user")
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise ConfigError(f"--password-env: the environment variable {args.password_env} "
                              "is not set")
        return value
    if args.ask_password:
        return password_input.ask(f"Password for {args.user} on the development server: ")
    if args.user:
        return secrets.token_urlsafe(12)
    return None


def _certificates(directory: Path) -> tuple[Certificates | None, ssl.SSLContext]:
    """Reuse the files in ``directory`` when all three are there, else make new ones."""
    files = [directory / name for name in (CA_FILE_NAME, CERT_FILE_NAME, KEY_FILE_NAME)]
    if all(path.is_file() for path in files):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(files[1], files[2])
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"--cert-dir {directory}: cannot load {files[1].name}: "
                              f"{error}") from None
        return None, context
    certificates = Certificates.generate(directory)
    return certificates, certificates.server_context()


def _announce(args: argparse.Namespace, server: DevServer,
              certificates: Certificates | None, password: str | None) -> None:
    mode = {TlsMode.NONE: "plaintext", TlsMode.STARTTLS: "STARTTLS",
            TlsMode.IMPLICIT: "implicit TLS"}[server.tls]
    ca_file = (certificates.ca_file if certificates is not None
               else (args.cert_dir / CA_FILE_NAME if args.cert_dir else None))
    lines = [f"mailwire serve: listening on {server.host}:{server.port} ({mode})",
             f"  saving messages to {server.maildir}"]
    if ca_file is not None:
        lines.append(f"  CA certificate: {ca_file}")
    if args.user:
        shown = (f"password from ${args.password_env}" if args.password_env
                 else "the password entered" if args.ask_password else f"password {password}")
        lines.append(f"  AUTH required: user {args.user!r}, {shown}")
        if server.tls is TlsMode.NONE:
            lines.append("  (no TLS: clients need --allow-plaintext-credentials)")
    example = f"mailwire send --host {server.host} --port {server.port}"
    if server.tls is TlsMode.IMPLICIT:
        # AUTO would first wait greeting_timeout for a plaintext greeting on this port.
        example += " --security ssl_implicit"
    if ca_file is not None:
        example += f" --ca-file {ca_file}"
    if args.user:
        example += f" --user {args.user} --ask-password"
        if server.tls is TlsMode.NONE:
            example += " --allow-plaintext-credentials"
    lines.append(f"  try: {example} --from me@example.com --to you@example.com "
                 "--subject hello --body hi")
    lines.append("  press Ctrl-C to stop")
    print("\n".join(lines), flush=True)


def _wait(stop: threading.Event, seconds: float | None) -> None:
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while not stop.is_set():
            remaining = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if remaining <= 0:
                break
            stop.wait(remaining)
    except KeyboardInterrupt:
        pass


@contextlib.contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """SIGTERM stops the server like Ctrl-C, also while it is shutting down."""

    def on_signal(_number: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Counter:
    """Prints a line per message and sets ``stop`` after ``limit`` of them."""

    def __init__(self, limit: int | None, stop: threading.Event) -> None:
        self.limit = limit
        self.stop = stop
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.count += 1
            print(printable(describe(message, self.count)), flush=True)
            if self.limit is not None and self.count >= self.limit:
                self.stop.set()


def describe(message: ReceivedMessage, number: int) -> str:
    headers = BytesHeaderParser(policy=default_policy).parsebytes(message.data)
    subject = str(headers.get("Subject", ""))
    recipients = ",".join(f"<{address}>" for address in message.rcpt_tos)
    security = message.tls_version or "plaintext"
    auth = f"{message.auth_mechanism}:{message.auth_user}" if message.auth_mechanism else "none"
    saved = message.saved_as.name if message.saved_as else "-"
    return (f"#{number} {time.strftime('%H:%M:%S')} from=<{message.mail_from}> to={recipients} "
            f"size={len(message.data)} subject={subject!r} tls={security} auth={auth} "
            f"saved={saved}")
