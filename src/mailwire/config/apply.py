"""Putting ``Settings`` on a client: ``apply_settings`` and ``require_host``.

Only what the settings set is applied; everything else keeps the client's default. Which
attribute each setting sets is in ``mailwire.config.table``. This module knows clients only as
objects with those attributes: the clients import the configuration, never the reverse.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mailwire.config.search import SEARCH_ORDER
from mailwire.config.settings import Settings
from mailwire.config.table import SETTINGS
from mailwire.errors import ConfigError
from mailwire.message.dkim_signer import DkimSigner


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
    signer = dkim_signer(settings)
    if signer is not None:
        given["dkim_signer"] = signer
    return given


def dkim_signer(settings: Settings) -> DkimSigner | None:
    """The signer ``dkim_key``, ``dkim_selector`` and ``dkim_domain`` make (all or none)."""
    parts = {"dkim_key": settings.dkim_key, "dkim_selector": settings.dkim_selector,
             "dkim_domain": settings.dkim_domain}
    missing = [key for key, value in parts.items() if not value]
    if len(missing) == len(parts):
        return None
    if missing:
        flags = ", ".join("--" + key.replace("_", "-") for key in parts)
        raise ConfigError(f"DKIM signing needs dkim_key, dkim_selector and dkim_domain "
                          f"({flags}); missing: {', '.join(missing)}")
    assert settings.dkim_key and settings.dkim_selector and settings.dkim_domain
    return DkimSigner(settings.dkim_domain, settings.dkim_selector, Path(settings.dkim_key))


def apply_settings(settings: Settings, client: object) -> None:
    """Set on ``client`` every attribute the settings give."""
    for attribute, value in client_values(settings).items():
        setattr(client, attribute, value)
