"""Putting ``Settings`` on a client: ``apply_settings`` and ``require_host``.

Only what the settings set is applied; everything else keeps the client's default. Which
attribute each setting sets is in ``mailwire.config.table``. This module knows clients only as
objects with those attributes: the clients import the configuration, never the reverse.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mailwire.config.search import SEARCH_ORDER
from mailwire.config.settings import Settings
from mailwire.config.table import SETTINGS
from mailwire.errors import ConfigError


def require_host(settings: Settings) -> str:
    if settings.host:
        return settings.host
    where = (f"{settings.source}" + (f" [profiles.{settings.profile}]" if settings.profile
                                     else "")
             if settings.source else f"no configuration file (searched: {', '.join(SEARCH_ORDER)})")
    raise ConfigError(f"no SMTP host configured: set host in the configuration file, "
                      f"MAILWIRE_HOST or --host ({where})")


def client_values(settings: Settings) -> dict[str, Any]:
    """Client attribute -> value, for every setting the settings give."""
    given: dict[str, Any] = {}
    defaults = {field.name: field.default for field in dataclasses.fields(Settings)}
    for setting in SETTINGS:
        if setting.attribute is None:
            continue
        value = getattr(settings, setting.key)
        if value is None or (value is False and defaults.get(setting.key) is False):
            continue
        if setting.key == "client_certificate" and settings.client_key:
            value = (value, settings.client_key)
        given[setting.attribute] = value
    return given


def apply_settings(settings: Settings, client: object) -> None:
    """Set on ``client`` every attribute the settings give."""
    for attribute, value in client_values(settings).items():
        setattr(client, attribute, value)
