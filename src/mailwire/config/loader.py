"""``load_settings``: one file (named or found), one profile of it, then the environment.

Precedence, weakest first: the file's top level, the chosen profile, ``MAILWIRE_*`` variables
(and, in the command line, its options). The profile is the one asked for, else
``$MAILWIRE_PROFILE``, else the file's ``profile`` key, else none. Every value is parsed and
checked here, so a ``Settings`` object is always valid; any problem is a ``ConfigError`` that
names the file (and line), the key and what is wrong. What a file may do depends on how it was
found (``mailwire.config.search.Trust``, ``mailwire.config.trust``).

Secrets given indirectly (``password_env``, ``password_command``, ...) are resolved only when
they are used: when a user name is set (``Settings.with_secrets``). A password written in the
file or ``MAILWIRE_PASSWORD`` is simply kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mailwire.config import files, keys, search, trust
from mailwire.config.dotnet import read_app_config
from mailwire.config.environment import read_environment
from mailwire.config.keys import ENV_PROFILE, FileSettings, Layer
from mailwire.config.settings import SecretSources, Settings
from mailwire.config.toml_file import read_toml
from mailwire.config.values import suggest
from mailwire.errors import ConfigError

_SECRET_KEYS = frozenset(key for slot in keys.SECRET_SLOTS.values() for key in slot)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] = os.environ,
    *,
    resolve_secrets: bool = True,
) -> Settings:
    """Settings from the file at ``path`` (or the one found by the search order), its
    ``profile``, and the environment.

    With ``resolve_secrets`` (the default) a password or token given indirectly is resolved
    when a user name is set; with ``resolve_secrets=False`` it stays None until
    ``Settings.with_secrets()``, so that no password command runs for an operation that turns
    out not to need it."""
    environment = read_environment(environ)
    found = (search.named(Path(path).expanduser()) if path is not None
             else search.find(environ, Path.cwd()))
    search.log_choice(found)
    file_settings = _read(found) if found is not None else None
    chosen, profile_layer = _choose_profile(file_settings, profile, environ)
    file_layers = [file_settings.defaults if file_settings else {}, profile_layer]
    if found is not None:
        trust.check(found, file_layers)
    merged = merge(*file_layers, environment)
    parsed = {key: keys.parse(key, raw) for key, raw in merged.items()}
    values: dict[str, Any] = {key: value for key, value in parsed.items()
                              if key not in _SECRET_KEYS}
    _check_combinations(values, merged)
    direct: dict[str, Any] = {slot: parsed.get(slot) for slot in keys.SECRET_SLOTS}
    indirect = {key: raw for key, raw in merged.items() if key in _SECRET_KEYS - set(direct)}
    settings = Settings(
        **values, **direct, source=found.path if found else None, profile=chosen,
        source_description=found.describe() if found else None,
        password_source=_describe_source(merged),
        secret_sources=SecretSources(indirect, environ) if indirect else None)
    return settings.with_secrets() if resolve_secrets else settings


def merge(*layers: Layer) -> Layer:
    """Later layers win; a layer giving a secret one way drops the other ways before it, and
    ``username = false`` drops the user name and every secret before it (no login)."""
    merged: Layer = {}
    for layer in layers:
        no_login = keys.no_login(layer)
        for slot in keys.SECRET_SLOTS.values():
            if no_login or any(key in layer for key in slot):
                for key in slot:
                    merged.pop(key, None)
        if no_login:
            merged.pop("username", None)
        merged.update({key: raw for key, raw in layer.items()
                       if not (no_login and key == "username")})
    return merged


def _read(found: search.Found) -> FileSettings:
    content, status = files.read(found.path, searched=found.trust is not search.Trust.NAMED)
    if found.format is search.Format.DOTNET:
        file_settings = read_app_config(found.path, content)
    else:
        file_settings = read_toml(found.path, content,
                                  pyproject=found.format is search.Format.PYPROJECT)
    files.warn_if_readable(found.path, status, trust.holds_secret(file_settings))
    return file_settings


def _choose_profile(file_settings: FileSettings | None, profile: str | None,
                    environ: Mapping[str, str]) -> tuple[str | None, Layer]:
    asked_by = ""
    name = profile
    if name is None and environ.get(ENV_PROFILE):
        name, asked_by = environ[ENV_PROFILE], f" (asked for by {ENV_PROFILE})"
    if name is None and file_settings is not None and file_settings.default_profile:
        name = file_settings.default_profile
        assert file_settings.default_profile_origin is not None
        asked_by = f" (asked for by {file_settings.default_profile_origin.describe()})"
    if name is None:
        return None, {}
    if file_settings is None:
        raise ConfigError(f"profile {name!r}{asked_by}: no configuration file was found "
                          f"(searched: {', '.join(search.SEARCH_ORDER)})")
    if name not in file_settings.profiles:
        available = ", ".join(sorted(file_settings.profiles)) or "none"
        raise ConfigError(f"{file_settings.path}: no profile {name!r}{asked_by}"
                          f"{suggest(name, file_settings.profiles)}; profiles: {available}")
    return name, file_settings.profiles[name]


def _check_combinations(values: dict[str, Any], merged: Layer) -> None:
    if "client_key" in values and "client_certificate" not in values:
        raise merged["client_key"].origin.error("needs client_certificate as well")


def _describe_source(merged: Layer) -> str | None:
    for key in keys.SECRET_SLOTS["password"]:
        if key in merged:
            return merged[key].origin.describe()
    return None
