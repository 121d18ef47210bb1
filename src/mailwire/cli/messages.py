"""What the command line says besides its results: warnings, and the library's messages with
its Python names replaced by the command line's options.

The library names its own attributes in messages (``set allow_plaintext_credentials=True``);
on the command line that advice must name the option (``--allow-plaintext-credentials``). The
table of settings (``mailwire.config.table``) knows both names.
"""

from __future__ import annotations

import re
import sys
import warnings
from typing import TextIO

from mailwire.cli.terminal import printable
from mailwire.config.table import option_names
from mailwire.warning_categories import MailwireWarning

PROGRAM = "mailwire"
_ASSIGNMENT = re.compile(r"\b([a-z_]+)=(True|true)\b")
_OPTIONS = option_names()


def command_line_names(text: str) -> str:
    """``text`` with ``attribute=True`` replaced by the option that sets it."""

    def option(match: re.Match[str]) -> str:
        return _OPTIONS.get(match.group(1), match.group(0))

    return _ASSIGNMENT.sub(option, text)


def one_line(text: str) -> str:
    return " / ".join(part.strip() for part in text.splitlines() if part.strip())


def error(message: str) -> None:
    """``mailwire: error: ...`` on one line; the server's words in it are made printable."""
    print(f"{PROGRAM}: error: {printable(one_line(command_line_names(message)))}",
          file=sys.stderr, flush=True)


def warning(message: str) -> None:
    print(f"{PROGRAM}: warning: {printable(one_line(command_line_names(message)))}",
          file=sys.stderr, flush=True)


def show_library_warnings() -> None:
    """mailwire's warnings as ``mailwire: warning: ...`` lines; others as Python shows them."""
    default = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        if issubclass(category, MailwireWarning):
            warning(str(message))
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
