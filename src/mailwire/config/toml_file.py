"""Reading ``mailwire.toml`` and the ``[tool.mailwire]`` table of ``pyproject.toml``.

The top level holds the defaults; ``[profiles.NAME]`` tables override them for one server;
``profile = "NAME"`` at the top level chooses the profile used when none is asked for, and
``username = false`` in a profile means no login there: the top level's user name, password
and token are not inherited (a relay that takes no credentials)::

    host = "smtp.example.com"
    username = "me@example.com"
    password_command = ["pass", "show", "mail/smtp"]
    profile = "work"

    [profiles.work]
    host = "mail.work.example"
    security = "ssl_implicit"

    [profiles.relay]
    host = "relay.internal"
    security = "none"
    username = false

tomllib keeps no positions, so the line of a key is found by a light scan of the text (table
headers and ``key =`` lines); it is given in messages when it could be found.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from mailwire.config import files
from mailwire.config.keys import (
    FILE_ONLY_KEYS,
    PARSERS,
    FileSettings,
    Layer,
    Origin,
    Raw,
    set_key,
    unknown_key,
)
from mailwire.errors import ConfigError

_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_LINE = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")
PYPROJECT_TABLE = ("tool", "mailwire")


def has_tool_table(path: Path) -> bool:
    """Whether ``pyproject.toml`` at ``path`` has a ``[tool.mailwire]`` table."""
    document = _load(path, files.read(path, searched=False)[0])
    return isinstance(document.get("tool"), dict) and "mailwire" in document["tool"]


def read_toml(path: Path, content: bytes, *, pyproject: bool = False) -> FileSettings:
    """What the TOML text ``content`` of the file ``path`` says."""
    document = _load(path, content)
    prefix: tuple[str, ...] = ()
    if pyproject:
        tool = document.get("tool")
        if not isinstance(tool, dict) or "mailwire" not in tool:
            raise ConfigError(f"{path}: has no [tool.mailwire] table")
        document, prefix = tool["mailwire"], PYPROJECT_TABLE
        if not isinstance(document, dict):
            raise ConfigError(f"{path}: tool.mailwire must be a table")
    lines = _KeyLines(content)
    origin = _OriginMaker(path, lines)
    settings = FileSettings(path, _layer(document, prefix, origin, top=True))
    if "profile" in document:
        where = origin(prefix, "profile")
        name = document["profile"]
        if not isinstance(name, str) or not name:
            raise where.error("expected the name of a profile")
        settings.default_profile, settings.default_profile_origin = name, where
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise origin(prefix, "profiles").error("expected tables [profiles.NAME]")
    for name, table in profiles.items():
        table_path = (*prefix, "profiles", name)
        if not isinstance(table, dict):
            raise origin((*prefix, "profiles"), name).error(
                f"expected a table [{_dotted(table_path)}]")
        settings.profiles[name] = _layer(table, table_path, origin, top=False)
    return settings


def _load(path: Path, content: bytes) -> dict[str, Any]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 (byte {error.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path}: malformed TOML: arrays or tables nested too deeply") from None


def _layer(table: dict[str, Any], table_path: tuple[str, ...], origin: _OriginMaker,
           *, top: bool) -> Layer:
    layer: Layer = {}
    for key, value in table.items():
        where = origin(table_path, key)
        if key in FILE_ONLY_KEYS:
            if top:
                continue
            raise where.error(f"{key!r} belongs at the top level, not in a profile")
        if key not in PARSERS:
            raise unknown_key(key, where, extra=FILE_ONLY_KEYS if top else ())
        set_key(layer, key, Raw(value, where))
    return layer


class _OriginMaker:
    def __init__(self, path: Path, lines: _KeyLines) -> None:
        self.path = path
        self.lines = lines

    def __call__(self, table_path: tuple[str, ...], key: str) -> Origin:
        label = f"[{_dotted(table_path)}] {key}" if table_path else key
        return Origin(label, self.path, self.lines.find(table_path, key), self.path.parent)


def _dotted(table_path: tuple[str, ...]) -> str:
    return ".".join(part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
                    for part in table_path)


class _KeyLines:
    """Line numbers of ``key =`` lines, by table; best effort, never an error."""

    def __init__(self, content: bytes) -> None:
        self._lines: dict[tuple[tuple[str, ...], str], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(content.decode("utf-8").splitlines(), start=1):
            header = _TABLE_HEADER.match(line)
            if header:
                table = tuple(_unquote(part) for part in _split_dotted(header.group(1)))
                continue
            key = _KEY_LINE.match(line)
            if key:
                self._lines.setdefault((table, _unquote(key.group(1))), number)

    def find(self, table: tuple[str, ...], key: str) -> int | None:
        return self._lines.get((table, key))


def _split_dotted(name: str) -> list[str]:
    return [part.strip() for part in re.findall(r"""(?:"[^"]*"|'[^']*'|[^.])+""", name)]


def _unquote(part: str) -> str:
    part = part.strip()
    return part[1:-1] if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'" else part
