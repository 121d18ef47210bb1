"""Applying ``Settings`` to a client: ``client_from_config`` and ``apply_settings``.

Only what the settings set is applied; everything else keeps the client's default. ``sender``
is not a client option: callers (the command line, ``send``) use ``settings.sender``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from mailwire.client import SmtpClient
from mailwire.config.loader import load_settings
from mailwire.config.search import SEARCH_ORDER
from mailwire.config.settings import Settings
from mailwire.errors import ConfigError
from mailwire.options import ClientOptions


def client_from_config(
    path: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> SmtpClient:
    """A ``SmtpClient`` set up from a configuration file and the environment
    (what ``SmtpClient.from_config`` does)."""
    return client_from_settings(load_settings(path, profile, environ))


def client_from_settings(settings: Settings) -> SmtpClient:
    client = SmtpClient(require_host(settings))
    apply_settings(settings, client)
    return client


def require_host(settings: Settings) -> str:
    if settings.host:
        return settings.host
    where = (f"{settings.source}" + (f" [profiles.{settings.profile}]" if settings.profile
                                     else "")
             if settings.source else f"no configuration file (searched: {', '.join(SEARCH_ORDER)})")
    raise ConfigError(f"no SMTP host configured: set host in the configuration file, "
                      f"MAILWIRE_HOST or --host ({where})")


def apply_settings(settings: Settings, client: ClientOptions) -> None:
    """Set on ``client`` every option the settings give."""
    if settings.host is not None:
        client.host = settings.host
    if settings.port is not None:
        client.port = settings.port
    if settings.username is not None:
        client.username = settings.username
    if settings.password is not None:
        client.password = settings.password
    if settings.oauth_token is not None:
        client.oauth_token = settings.oauth_token
    if settings.security is not None:
        client.security = settings.security
    if settings.timeout is not None:
        client.timeout = settings.timeout
    if settings.greeting_timeout is not None:
        client.greeting_timeout = settings.greeting_timeout
    if settings.local_hostname is not None:
        client.local_hostname = settings.local_hostname
    if settings.proxy is not None:
        client.proxy = settings.proxy
    if settings.bind is not None:
        client.bind_endpoint = settings.bind
    _apply_tls(settings, client)
    if settings.allowed_mechanisms is not None:
        client.allowed_authentication = settings.allowed_mechanisms
    if settings.allow_plaintext_credentials:
        client.allow_plaintext_credentials = True


def _apply_tls(settings: Settings, client: ClientOptions) -> None:
    if settings.tls_versions is not None:
        client.supported_encryption = settings.tls_versions
    if settings.ca_file is not None:
        client.ca_file = settings.ca_file
    if settings.ca_path is not None:
        client.ca_path = settings.ca_path
    if settings.client_certificate is not None:
        client.client_certificate = (
            (settings.client_certificate, settings.client_key) if settings.client_key
            else settings.client_certificate)
    if settings.insecure_skip_verify:
        client.dangerously_skip_certificate_verification = True
