"""Which configuration file is used when none is named, how much it is trusted, and which
format a file is in.

The search order (the first that exists wins; files are never merged):

1. the file named by ``$MAILWIRE_CONFIG`` (it must exist);
2. ``./mailwire.toml``;
3. ``./pyproject.toml``, only if it has a ``[tool.mailwire]`` table;
4. ``./app.config``, then ``./web.config`` (.NET ``<system.net><mailSettings>``);
5. ``$XDG_CONFIG_HOME/mailwire/config.toml`` (by default ``~/.config/mailwire/config.toml``).

Files of the current folder come before the user's own file: a project's settings are more
specific than a personal default. They are also the files a stranger may have written (a
cloned repository, a pull request's checkout), so they are trusted least: see ``Trust`` and
``mailwire.config.trust``. Which file was used, and which user file it hid, is logged on the
``mailwire.config`` logger (the command line's ``-v``). With no file, only the environment
is used.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mailwire.config.keys import ENV_CONFIG, Origin
from mailwire.config.toml_file import has_tool_table
from mailwire.errors import ConfigError

_log = logging.getLogger("mailwire.config")

LOCAL_FILES = ("mailwire.toml", "pyproject.toml", "app.config", "web.config")
SEARCH_ORDER = (
    f"${ENV_CONFIG}",
    "./mailwire.toml",
    "./pyproject.toml [tool.mailwire]",
    "./app.config",
    "./web.config",
    "$XDG_CONFIG_HOME/mailwire/config.toml (~/.config/mailwire/config.toml)",
)


class Format(enum.Enum):
    TOML = "toml"
    PYPROJECT = "pyproject"
    DOTNET = "dotnet"


class Trust(enum.Enum):
    """How a file came to be used, which decides what it may do."""

    NAMED = "named"
    """Named by the caller (``from_config(path)``, ``--config``, ``$MAILWIRE_CONFIG``):
    trusted with everything."""
    USER = "user"
    """The user's own file, found by searching: it must belong to the user; then trusted."""
    FOUND = "found"
    """Found in the current folder: it must belong to the user, and may not run commands,
    read other environment variables than ``MAILWIRE_*``, turn certificate verification off or
    allow plaintext credentials."""


@dataclass(frozen=True, slots=True)
class Found:
    path: Path
    format: Format
    trust: Trust = Trust.NAMED
    hidden_user_file: Path | None = None
    """The user's own file, when a file of the current folder was used instead of it."""

    def describe(self) -> str:
        """The file and why it was used, for logs and messages."""
        if self.trust is Trust.NAMED:
            return str(self.path)
        why = "your own file" if self.trust is Trust.USER else "found in the current folder"
        hidden = (f"; {self.hidden_user_file} not used" if self.hidden_user_file is not None
                  else "")
        return f"{self.path} ({why}{hidden})"


def format_of(path: Path) -> Format:
    """By name: ``pyproject.toml``, ``*.toml``, ``*.config``/``*.xml``; else by the first byte."""
    if path.name == "pyproject.toml":
        return Format.PYPROJECT
    if path.suffix.lower() == ".toml":
        return Format.TOML
    if path.suffix.lower() in (".config", ".xml"):
        return Format.DOTNET
    try:
        with path.open("rb") as handle:
            start = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return Format.TOML
    return Format.DOTNET if start.startswith(b"<") else Format.TOML


def named(path: Path, origin: Origin | None = None) -> Found:
    """A file the caller named: it must exist."""
    if not path.is_file():
        problem = "no such file" if not path.exists() else "not a file"
        if origin is not None:
            raise origin.error(f"{problem}: {path}")
        raise ConfigError(f"{path}: {problem}")
    return Found(path, format_of(path))


def find(environ: Mapping[str, str], cwd: Path) -> Found | None:
    """The configuration file to use when none is named, or None."""
    configured = environ.get(ENV_CONFIG)
    if configured:
        return named(Path(configured).expanduser(), Origin(f"environment variable {ENV_CONFIG}"))
    user_file = user_config_dir(environ) / "mailwire" / "config.toml"
    has_user_file = user_file.is_file()
    for name in LOCAL_FILES:
        candidate = cwd / name
        if not candidate.is_file():
            continue
        kind = format_of(candidate)
        if kind is Format.PYPROJECT and not has_tool_table(candidate):
            continue
        return Found(candidate, kind, Trust.FOUND, user_file if has_user_file else None)
    return Found(user_file, Format.TOML, Trust.USER) if has_user_file else None


def user_config_dir(environ: Mapping[str, str]) -> Path:
    if environ.get("XDG_CONFIG_HOME"):
        return Path(environ["XDG_CONFIG_HOME"])
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".config"


def log_choice(found: Found | None) -> None:
    if found is None:
        _log.info("configuration: no file (searched: %s); MAILWIRE_* variables only",
                  ", ".join(SEARCH_ORDER))
    else:
        _log.info("configuration: %s", found.describe())
