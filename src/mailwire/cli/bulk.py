"""``mailwire send-many``: send many .eml files, over several connections if asked.

Each file goes as it is, Bcc removed; its envelope comes from its headers (the sender from
the configuration's sender when set) unless --from / --to are given. Files are opened only
when their turn comes; with - the paths are read from standard input as sending goes.
Prints one line per message not sent to every recipient (its path and why), then
"sent N of M; failed K; unknown U" (unknown: the connection failed after the end of the
message) with the time it took and the rate; with --json, one JSON object per message and a
last {"summary": ...} instead. The summary is printed also when the connection or the login
failed before the first message.
Progress shows on standard error when it is a terminal: a bar for a list of paths, a spinner
for -.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailwire.cli.connection import (
    add_connection_options,
    announce_connection,
    client_from_args,
    option_type,
    settings_from_args,
)
from mailwire.cli.exit_codes import ExitCode, exit_code_for
from mailwire.cli.progress import NullProgress, TerminalProgress, is_terminal, progress
from mailwire.cli.send import address_of
from mailwire.cli.terminal import printable
from mailwire.client import SmtpClient
from mailwire.config import Settings
from mailwire.errors import (
    AuthenticationError,
    DeliveryUnknownError,
    GreetingRefusedError,
    RecipientsRefusedError,
    SmtpConnectionError,
    SmtpError,
    SmtpProtocolError,
    SmtpSecurityError,
    SmtpTimeoutError,
    SmtpUsageError,
)
from mailwire.outgoing import Outgoing
from mailwire.protocol.replies import Reply
from mailwire.results import BulkResult

STDIN = "-"
PATTERN = "*.eml"

EPILOG = """\
exit status:
  0    every message was sent to every recipient
  1    any other error
  2    usage or configuration error (a bad option, a path that does not exist, a missing
       password); nothing was sent
  3    connection error that stopped everything: the server could not be reached, TLS or
       the certificate failed, a phase timed out, the server refused the session or broke
       the protocol, either before the first message or for a message after all its
       attempts; messages under way are finished, the rest are not attempted
  4    authentication failed, before the first message or later; stopped as for 3
  5    some messages were not sent, or not to every recipient: the server refused them,
       a file could not be read or sent as it is, or the delivery is unknown (the
       connection failed after the end of the message); each is listed
  130  interrupted (Ctrl-C)
"""


def _count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None
    if number < 1:
        raise ValueError(f"expected at least 1, got {number}")
    return number


def _number(text: str, *, zero: bool) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        least = "a finite number of at least 0" if zero else "a finite number above 0"
        raise ValueError(f"expected {least}, got {text!r}")
    return number


def _input_path(text: str) -> str:
    if text == STDIN:
        return text
    if not os.path.exists(text):
        raise ValueError(f"no such file or directory: {text}")
    if os.path.isdir(text):
        return text
    if not os.path.isfile(text):
        raise ValueError(f"not a file or directory: {text}")
    if not os.access(text, os.R_OK):
        raise ValueError(f"cannot read {text}: permission denied")
    return text


COUNT = option_type(_count, "count")
DELAY = option_type(lambda text: _number(text, zero=True), "seconds")
RATE = option_type(lambda text: _number(text, zero=False), "rate")
INPUT = option_type(_input_path, "path")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parent: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "send-many", parents=[parent], allow_abbrev=False,
        help="send many .eml files",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=INPUT, metavar="PATH",
                        help="an .eml file, a directory (every *.eml in it, sorted by name), "
                             "or - to read paths from standard input, one per line")
    envelope = parser.add_argument_group("envelope")
    envelope.add_argument("--from", dest="sender", metavar="ADDR",
                          help="envelope sender of every message (default: the "
                               "configuration's sender, else each file's From)")
    envelope.add_argument("--to", action="append", default=[], metavar="ADDR",
                          help="envelope recipient of every message, instead of each file's "
                               "To/Cc/Bcc (repeatable)")
    sending = parser.add_argument_group("sending")
    sending.add_argument("--connections", type=COUNT, metavar="N",
                         help="connections at once (default 1, or --processes)")
    sending.add_argument("--processes", type=COUNT, default=1, metavar="N",
                         help="spread the connections over N processes (default 1)")
    sending.add_argument("--max-attempts", type=COUNT, default=4, metavar="N",
                         help="attempts per message on transient failures (default 4)")
    sending.add_argument("--retry-delay", type=DELAY, default=0.5, metavar="SECONDS",
                         help="wait before the first retry, doubled each time (default 0.5)")
    sending.add_argument("--rate-limit", type=RATE, metavar="PER_SECOND",
                         help="at most this many messages per second (per process)")
    sending.add_argument("--messages-per-connection", type=COUNT, metavar="N",
                         help="open a new connection after this many messages")
    sending.add_argument("--json", action="store_true",
                         help="one JSON object per message as it completes, then "
                              '{"summary": {...}}')
    add_connection_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.paths.count(STDIN) > 1:
        raise SmtpUsageError("- (paths from standard input) can be given only once")
    if STDIN in args.paths and args.ask_password and not sys.stdin.isatty():
        raise SmtpUsageError("--ask-password would read the password from standard input, "
                             "which - reads paths from: use --password-env VAR")
    connections = args.connections or args.processes
    if args.processes > connections:
        raise SmtpUsageError(f"--processes {args.processes} needs at least "
                             f"{args.processes} --connections")
    inputs = _inputs(args.paths)
    settings = settings_from_args(args)
    sender = args.sender or settings.sender
    messages = messages_of(inputs.paths, inputs.total,
                           envelope_address(sender, "--from") if sender else None,
                           [envelope_address(to, "--to") for to in args.to] or None)
    client = client_from_args(args, settings)
    where = f"{client.host}:{client.effective_port}"
    tally = Tally()
    if messages.total == 0:
        Report(args.json, progress_shown=False).summary(tally, messages)
        return ExitCode.OK
    with progress(f"connecting to {where}", enabled=not args.verbose) as reporter:
        report = Report(args.json, isinstance(reporter, TerminalProgress))
        try:
            with client:
                announce_connection(client)
                try:
                    client.connect()
                except SmtpError as error:
                    tally.stopped = (with_password_source(error, settings)
                                     if isinstance(error, AuthenticationError) else error)
                else:
                    _send_all(args, client, messages, tally, report, reporter, where,
                              connections)
        except KeyboardInterrupt:
            reporter.close()
            report.summary(tally, messages, interrupted=True)
            raise
    report.summary(tally, messages)
    if tally.stopped is not None:
        _stopped(tally.stopped, tally, messages, settings)
        return exit_code_for(tally.stopped)
    return ExitCode.OK if tally.all_sent else ExitCode.REFUSED


def _send_all(args: argparse.Namespace, client: SmtpClient, messages: Messages, tally: Tally,
              report: Report, reporter: TerminalProgress | NullProgress, where: str,
              connections: int) -> None:
    """Send every message on the connected ``client``; the first failure of the server or the
    login stops handing out messages."""
    if connections > 1 or args.processes > 1:
        client.quit()
    reporter.set_label(f"sending to {where}")
    reporter(0, messages.total)
    for outcome in client.send_many(
            messages, connections=connections, processes=args.processes,
            max_attempts=args.max_attempts, retry_delay=args.retry_delay,
            rate_limit=args.rate_limit, messages_per_connection=args.messages_per_connection,
            progress=reporter):
        path = messages.path_of(outcome.index)
        tally.add(outcome)
        report.message(path, outcome)
        if tally.stopped is None and stops_everything(outcome.error):
            tally.stopped = outcome.error
            messages.stop()


def envelope_address(mailbox: str, option: str) -> str:
    """The address of ``mailbox``, checked now rather than failing every message later."""
    try:
        return address_of(mailbox)
    except SmtpUsageError as error:
        raise SmtpUsageError(f"{option} {mailbox!r}: {error}") from None


@dataclass
class _Inputs:
    paths: Iterable[Path]
    total: int | None


def _inputs(arguments: list[str]) -> _Inputs:
    """The message files in order: a list when every path was given, else read as it goes."""
    if STDIN not in arguments:
        paths = [path for argument in arguments for path in _expand(Path(argument), warn=True)]
        return _Inputs(paths, len(paths))
    return _Inputs(_chained(arguments), None)


def _chained(arguments: list[str]) -> Iterator[Path]:
    for argument in arguments:
        if argument == STDIN:
            yield from _from_stdin()
        else:
            yield from _expand(Path(argument), warn=True)


def _from_stdin() -> Iterator[Path]:
    """Paths from standard input, one per line, as they come; directories are expanded."""
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield from _expand(Path(os.fsdecode(line)), warn=False)


def _expand(path: Path, *, warn: bool) -> list[Path]:
    """A file is itself (whatever its name); a directory is the *.eml files in it, sorted."""
    if not path.is_dir():
        return [path]
    found = sorted(entry for entry in path.glob(PATTERN) if entry.is_file())
    if not found and warn:
        print(f"mailwire: warning: no {PATTERN} files in {path}", file=sys.stderr)
    return found


class Messages:
    """What ``send_many`` reads: one ``Outgoing`` per path, taken one at a time (from any
    sending thread), until ``stop()``. Remembers each path until its result is claimed."""

    def __init__(self, paths: Iterable[Path], total: int | None, sender: str | None,
                 recipients: list[str] | None) -> None:
        self._paths = paths
        self.total = total
        self._sender = sender
        self._recipients = recipients
        self._stop = threading.Event()
        self._pending: dict[int, Path] = {}
        self.read = 0

    def __iter__(self) -> Iterator[Outgoing]:
        for path in self._paths:
            if self._stop.is_set():
                return
            self._pending[self.read] = path
            self.read += 1
            yield Outgoing(path, self._sender, self._recipients)

    def path_of(self, index: int) -> Path:
        return self._pending.pop(index)

    def stop(self) -> None:
        """Hand out no more messages: the senders finish what they have and end."""
        self._stop.set()


class _CountedMessages(Messages):
    """A list of known length: ``Sized``, so ``send_many`` reports the total (a bar)."""

    def __len__(self) -> int:
        return self.total or 0


def messages_of(paths: Iterable[Path], total: int | None, sender: str | None,
                recipients: list[str] | None) -> Messages:
    """``Sized`` only when the total is known; a list read as it goes shows a spinner."""
    kind = _CountedMessages if total is not None else Messages
    return kind(paths, total, sender, recipients)


def stops_everything(error: SmtpError | None) -> bool:
    """A failure of the server or of the login rather than of one message: sending stops.

    Transient ones count only once the library gave up retrying the message."""
    if error is None or isinstance(error, DeliveryUnknownError):
        return False
    return isinstance(error, AuthenticationError | GreetingRefusedError | SmtpConnectionError
                      | SmtpTimeoutError | SmtpSecurityError | SmtpProtocolError)


@dataclass
class Tally:
    sent: int = 0
    partial: int = 0
    failed: int = 0
    unknown: int = 0
    stopped: SmtpError | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self, elapsed: float) -> float | None:
        """Messages sent per second, or None before any time passed."""
        return self.sent / elapsed if elapsed > 0 else None

    def add(self, outcome: BulkResult) -> None:
        if outcome.result is not None:
            self.sent += 1
            self.partial += not outcome.result.all_accepted
        elif isinstance(outcome.error, DeliveryUnknownError):
            self.unknown += 1
        else:
            self.failed += 1

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.unknown

    @property
    def all_sent(self) -> bool:
        return not (self.partial or self.failed or self.unknown)


class Report:
    """Standard output: the messages not sent to everyone and a summary, or JSON lines."""

    def __init__(self, as_json: bool, progress_shown: bool) -> None:
        self._json = as_json
        # A line printed under the progress bar on the same terminal first erases the bar;
        # the bar is drawn again on the next line.
        self._erase = "\r\x1b[K" if progress_shown and is_terminal(sys.stdout) else ""

    def message(self, path: Path, outcome: BulkResult) -> None:
        if self._json:
            self._print(json.dumps(message_json(path, outcome)))
            return
        line = message_line(path, outcome)
        if line is not None:
            self._print(line)

    def summary(self, tally: Tally, messages: Messages, *, interrupted: bool = False) -> None:
        """The counts. Stopped: the messages never handed out are "not attempted" (unknown
        for a list read from standard input). Interrupted: those without a result are "not
        done" (some may have been under way)."""
        total = messages.total if messages.total is not None else messages.read
        left = None if messages.total is None else messages.total - tally.done
        not_attempted = left if tally.stopped is not None and not interrupted else 0
        elapsed = tally.elapsed
        rate = tally.rate(elapsed)
        if self._json:
            self._print(json.dumps({"summary": {
                "total": total, "sent": tally.sent, "partly_refused": tally.partial,
                "failed": tally.failed, "unknown": tally.unknown,
                "not_attempted": not_attempted,
                "stopped": one_line(str(tally.stopped)) if tally.stopped else None,
                "interrupted": interrupted, "elapsed_seconds": round(elapsed, 3),
                "messages_per_second": round(rate, 1) if rate is not None else None}}),
                under_progress=False)
            return
        line = f"sent {tally.sent} of {total}; failed {tally.failed}; unknown {tally.unknown}"
        if tally.partial:
            line += f"; partly refused {tally.partial}"
        if not_attempted:
            line += f"; not attempted {not_attempted}"
        if interrupted:
            line += f"; interrupted, {total - tally.done} not done"
        line += f"; {elapsed:.1f} s" + (f", {rate:.1f} messages/s" if rate and tally.sent else "")
        self._print(line, under_progress=False)

    def _print(self, line: str, *, under_progress: bool = True) -> None:
        print((self._erase if under_progress else "") + printable(line), flush=True)


def message_line(path: Path, outcome: BulkResult) -> str | None:
    """``PATH: why``, for a message not sent to every recipient; None when it was."""
    result = outcome.result
    if result is None:
        return f"{path}: {one_line(str(outcome.error))}"
    if result.all_accepted:
        return None
    refused = ", ".join(f"{address} {reply.describe()}"
                        for address, reply in result.refused.items())
    total = len(result.refused) + len(result.accepted)
    return one_line(f"{path}: {len(result.refused)} of {total} recipients refused, sent to the "
                    f"others: {refused}")


def message_json(path: Path, outcome: BulkResult) -> dict[str, Any]:
    result, error = outcome.result, outcome.error
    if result is not None:
        status = "sent" if result.all_accepted else "partly_refused"
        refused = result.refused
    else:
        status = "unknown" if isinstance(error, DeliveryUnknownError) else "failed"
        refused = error.refused if isinstance(error, RecipientsRefusedError) else {}
    return {
        "path": str(path),
        "index": outcome.index,
        "status": status,
        "attempts": outcome.attempts,
        "sender": result.sender if result is not None else None,
        "accepted": list(result.accepted) if result is not None else [],
        "refused": {address: reply_json(reply) for address, reply in refused.items()},
        "reply": reply_json(result.reply) if result is not None else None,
        "error": one_line(str(error)) if error is not None else None,
        "error_type": type(error).__name__ if error is not None else None,
        "error_reply": reply_json(error.reply) if error and error.reply else None,
    }


def reply_json(reply: Reply) -> dict[str, Any]:
    return {"code": reply.code, "enhanced_code": reply.enhanced_code, "text": reply.text}


def one_line(text: str) -> str:
    return " / ".join(part.strip() for part in text.splitlines() if part.strip())


def _stopped(error: SmtpError, tally: Tally, messages: Messages, settings: Settings) -> None:
    if isinstance(error, AuthenticationError):
        error = with_password_source(error, settings)
    if messages.total is None:
        rest = f" ({messages.read} path(s) read from the list, no more)"
    else:
        left = messages.total - tally.done
        rest = f" ({left} message(s) not attempted)" if left else ""
    print(printable(f"mailwire: error: stopped sending{rest}: {one_line(str(error))}"),
          file=sys.stderr, flush=True)


def with_password_source(error: AuthenticationError, settings: Settings) -> AuthenticationError:
    """The error naming where the password came from (``--password-env VAR``, a prompt)."""
    if settings.password_source is None:
        return error
    return AuthenticationError(f"{error} (password from {settings.password_source})", reply=None)

