"""How a pool makes its clients: from keyword options, from loaded settings, or from a callable.

Every pooled client gets the same options, so every connection in a pool goes to the same server
in the same way (security mode, proxy, local address, TLS versions, mechanisms). Settings from a
configuration file are loaded once, when the pool is made: a ``password_command`` runs once, not
once per connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mailwire.config import Settings, apply_settings, load_settings
from mailwire.errors import ConfigError, SmtpUsageError
from mailwire.options import ClientOptions
from mailwire.security import SecurityOptions

Client = TypeVar("Client", bound=ClientOptions)


def from_options(
    kind: type[Client],
    host: str,
    port: int | None,
    username: str | None,
    password: str | None,
    security: SecurityOptions | str,
    options: Mapping[str, Any],
) -> Callable[[], Client]:
    """A factory of ``kind(host, port, username, password, security, **options)``; a wrong
    option fails here, not at the first send."""
    settings = dict(options)

    def make() -> Client:
        return kind(host, port, username, password, security, **settings)

    try:
        make()
    except TypeError as error:
        raise SmtpUsageError(f"unknown client option: {error}") from None
    return make


def from_settings(kind: type[Client], settings: Settings) -> Callable[[], Client]:
    """A factory of clients set up from ``settings`` (see ``mailwire.load_settings``)."""
    if not settings.host:
        raise ConfigError("no SMTP host configured for the pool: set host in the "
                          "configuration file or MAILWIRE_HOST")
    host = settings.host

    def make() -> Client:
        client = kind(host)
        apply_settings(settings, client)
        return client

    make()
    return make


def from_config(
    kind: type[Client],
    path: str | os.PathLike[str] | None,
    profile: str | None,
    environ: Mapping[str, str] | None,
) -> Callable[[], Client]:
    """A factory from a configuration file and ``MAILWIRE_*`` variables, read once now."""
    settings = load_settings(path, profile, os.environ if environ is None else environ)
    return from_settings(kind, settings)
