"""Configuration values as read, with where each came from, and their parsing.

A value always carries its ``Origin`` (file and line, environment variable, XML attribute), so
every error names where the bad value was written. The keys and their parsers are the rows of
``mailwire.config.table``; an environment variable is ``MAILWIRE_`` plus the key in upper case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailwire.config import values
from mailwire.config.table import ENV_PREFIX, SETTINGS, Parser, secret_slots
from mailwire.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value was written: ``file`` and ``line`` when known, and the key as written."""

    key: str
    file: Path | None = None
    line: int | None = None
    base_dir: Path | None = None
    """Relative paths and secret commands are taken relative to this folder."""

    def describe(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{where}{self.key}"

    def error(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.describe()}: {problem}")

    @property
    def folder(self) -> Path:
        return self.base_dir if self.base_dir is not None else Path.cwd()


@dataclass(frozen=True, slots=True)
class Raw:
    """A value as read, before parsing."""

    value: object
    origin: Origin


Layer = dict[str, Raw]
"""The keys one source (a table of a file, the environment) sets."""


@dataclass(slots=True)
class FileSettings:
    """What one file says: its defaults, its profiles, and the default profile's name."""

    path: Path
    defaults: Layer
    profiles: dict[str, Layer] = field(default_factory=dict)
    default_profile: str | None = None
    default_profile_origin: Origin | None = None


PARSERS: dict[str, Parser] = {setting.key: setting.parse for setting in SETTINGS}
"""Every key a file, a profile or the environment may set."""

SECRET_SLOTS: dict[str, tuple[str, ...]] = secret_slots()
"""Keys that are alternative ways to give one secret: a source that sets one of them replaces
whatever a weaker source said through any of the others."""

FILE_ONLY_KEYS = ("profile", "profiles")
"""Top-level TOML keys: the default profile's name and the profile tables."""

ENV_CONFIG = ENV_PREFIX + "CONFIG"
ENV_PROFILE = ENV_PREFIX + "PROFILE"


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


def unknown_key(name: str, origin: Origin, *, extra: tuple[str, ...] = ()) -> ConfigError:
    known = (*PARSERS, *extra)
    return origin.error(f"unknown key{values.suggest(name, known)}")


def parse(key: str, raw: Raw) -> Any:
    """The typed value of ``raw`` for ``key``, or a ConfigError naming where it was written."""
    try:
        return PARSERS[key](raw.value, raw.origin.folder)
    except ValueError as error:
        raise raw.origin.error(str(error)) from None


def no_login(layer: Layer) -> bool:
    """Whether ``layer`` says ``username = false``: no login, whatever a weaker layer said
    (a profile for a relay that takes no credentials, under a top level that has them)."""
    raw = layer.get("username")
    return raw is not None and raw.value is False


def set_key(layer: Layer, key: str, raw: Raw) -> None:
    """Add ``key`` to ``layer``, refusing two ways of giving the same secret in one place, and
    a secret next to ``username = false``."""
    secrets = [other for slot in SECRET_SLOTS.values() for other in slot]
    clash: str | None = None
    if key == "username" and raw.value is False:
        clash = next((other for other in secrets if other in layer), None)
    elif key in secrets and no_login(layer):
        clash = "username"
    if clash is not None:
        raise raw.origin.error(f"conflicts with {layer[clash].origin.describe()}: "
                               "username = false means no login, so no password or token")
    for slot in SECRET_SLOTS.values():
        if key in slot:
            clash = next((other for other in slot if other != key and other in layer), None)
            if clash is not None:
                raise raw.origin.error(f"conflicts with {layer[clash].origin.describe()}; "
                                       "give only one of them")
    layer[key] = raw
