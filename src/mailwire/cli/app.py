"""The ``mailwire`` program: the argument parser, the commands, and errors turned into one
line and an exit status."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from mailwire.cli import bulk, demo, messages, probe, send, serve, tracing
from mailwire.cli.exit_codes import EPILOG, ExitCode, exit_code_for
from mailwire.errors import ConfigError, SmtpError

PROGRAM = "mailwire"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, pointing at ``--help``; unknown arguments are named by their
    options only, so a secret typed after a mistyped option is not repeated."""

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            options = [extra.split("=", 1)[0] for extra in extras if extra.startswith("-")]
            shown = " ".join(options) if options else f"{len(extras)} extra argument(s)"
            self.error(f"unrecognized arguments: {shown}")
        return parsed

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{PROGRAM}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROGRAM, allow_abbrev=False,
        description="mailwire: send mail, diagnose SMTP servers, run a local test server.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show the SMTP conversation (secrets redacted); -vv: all logs")
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {_version()}")
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="show the SMTP conversation (secrets redacted); -vv: all logs")
    commands = parser.add_subparsers(title="commands", dest="command", required=True,
                                     metavar="COMMAND")
    for command in (send, bulk, probe, serve, demo):
        command.add_parser(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program; returns the exit status (see ``mailwire --help``)."""
    args = build_parser().parse_args(argv)
    tracing.enable(args.verbose)
    messages.show_library_warnings()
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        _error("interrupted")
        return ExitCode.INTERRUPTED
    except SmtpError as error:
        source = getattr(args, "configuration", None)
        note = f" (settings from {source})" if source and not isinstance(error, ConfigError) else ""
        _error(f"{error}{note}")
        return exit_code_for(error)
    except BrokenPipeError:
        _silence_stdout()
        return ExitCode.FAILURE
    except Exception as error:
        if args.verbose:
            traceback.print_exc()
        hint = "" if args.verbose else " (run with -v for the traceback)"
        _error(f"unexpected {type(error).__name__}: {error}{hint}")
        return ExitCode.FAILURE


def _error(message: str) -> None:
    messages.error(message)


def _silence_stdout() -> None:
    """The reader went away (``mailwire probe | head``): drop what is still buffered."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _version() -> str:
    try:
        return version("mailwire")
    except PackageNotFoundError:
        return "unknown"
