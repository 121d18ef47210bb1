"""Asking for a password: a silent prompt on a terminal, else one line of standard input.

``getpass`` on a pipe falls back to echoing with a warning ("Can not control echo on the
terminal"); a script that pipes a password in (``printf '%s\\n' "$PW" | mailwire send
--ask-password ...``) gets the first line read quietly instead.
"""

from __future__ import annotations

import getpass
import sys

from mailwire.errors import ConfigError


def ask(prompt: str) -> str:
    """The password typed at ``prompt``, or the first line of a non-terminal standard input."""
    terminal = _is_terminal()
    try:
        password = getpass.getpass(prompt) if terminal else _first_line()
    except (EOFError, KeyboardInterrupt):
        raise ConfigError("no password entered") from None
    if not password:
        raise ConfigError("no password entered" if terminal
                          else "no password on standard input (--ask-password reads its first "
                               "line when it is not a terminal)")
    return password


def _first_line() -> str:
    if sys.stdin is None:
        return ""
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


def _is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()
