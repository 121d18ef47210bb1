"""Settings from environment variables: ``MAILWIRE_`` plus any key in upper case.

``MAILWIRE_HOST``, ``MAILWIRE_PORT``, ``MAILWIRE_USERNAME``, ``MAILWIRE_PASSWORD``,
``MAILWIRE_SECURITY``, ``MAILWIRE_PASSWORD_COMMAND``, ``MAILWIRE_TLS_VERSIONS`` (comma-separated),
and so on; they override the file. ``MAILWIRE_CONFIG`` names the file and ``MAILWIRE_PROFILE``
the profile. A variable set to the empty string counts as not set. Any other ``MAILWIRE_``
name is an error (with a suggestion), so a misspelt variable is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailwire.config.keys import (
    ENV_CONFIG,
    ENV_PROFILE,
    PARSERS,
    Layer,
    Origin,
    Raw,
    env_name,
    set_key,
)
from mailwire.config.table import ENV_PREFIX
from mailwire.config.values import suggest


def read_environment(environ: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    known = [env_name(key) for key in PARSERS] + [ENV_CONFIG, ENV_PROFILE]
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in (ENV_CONFIG, ENV_PROFILE):
            continue
        origin = Origin(f"environment variable {name}")
        key = name[len(ENV_PREFIX):].lower()
        if key not in PARSERS:
            raise origin.error(f"unknown setting{suggest(name, known)}")
        if environ[name] != "":
            set_key(layer, key, Raw(environ[name], origin))
    return layer

