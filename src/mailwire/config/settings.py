"""``Settings``: the typed, validated result of loading a configuration.

A field left at None was set nowhere, and the client's own default applies. Secrets given
indirectly (``password_env``, ``password_command``) are resolved by ``with_secrets`` only when
a user name is set; they never appear in the repr, and neither do proxy credentials.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from mailwire.auth import SmtpKnownAuthenticationType
from mailwire.config import secrets
from mailwire.config.keys import Layer
from mailwire.dsn import DeliveryNotificationOptions
from mailwire.pickup import SmtpDeliveryMethod
from mailwire.security import SecurityOptions
from mailwire.transport.proxy import redact_url
from mailwire.transport.tls import EncryptionProtocols

_SECRETS = frozenset({"password", "oauth_token"})
_NOT_SHOWN = frozenset({"password_source", "source_description", "secret_sources"})


@dataclass(frozen=True, slots=True)
class SecretSources:
    """Where the password and token are to come from, kept until they are needed."""

    layer: Layer
    environ: Mapping[str, str] = field(repr=False)

    def resolve(self, slot: str) -> str | None:
        return secrets.resolve(slot, self.layer, self.environ)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything a configuration can say about connecting and sending."""

    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    oauth_token: str | None = None
    security: SecurityOptions | None = None
    timeout: float | None = None
    greeting_timeout: float | None = None
    local_hostname: str | None = None
    """The name given in EHLO (.NET's ``clientDomain``)."""
    sender: str | None = None
    """The default envelope sender and From address (.NET's ``from``)."""
    proxy: str | None = None
    """A proxy URL: ``socks5://[user:pass@]host:port``, ``socks5h://``, ``socks4://``,
    ``socks4a://`` or ``http://``."""
    bind: tuple[str, int] | None = None
    """The local address to connect from; port 0 lets the system choose."""
    tls_versions: EncryptionProtocols | None = None
    ca_file: str | None = None
    ca_path: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    insecure_skip_verify: bool = False
    allowed_mechanisms: SmtpKnownAuthenticationType | None = None
    allow_plaintext_credentials: bool = False
    notify: DeliveryNotificationOptions | None = None
    """Delivery status notifications asked for by default."""
    dsn_return: str | None = None
    require_dsn: bool | None = None
    delivery_method: SmtpDeliveryMethod | None = None
    pickup_directory: str | None = None
    dkim_key: str | None = None
    """The DKIM private key file; with ``dkim_selector`` and ``dkim_domain``, every message
    is signed."""
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    source: Path | None = None
    """The file the settings were read from; None when only the environment was used."""
    profile: str | None = None
    """The profile chosen in that file, if any."""
    source_description: str | None = None
    """The file and why it was used (named, the user's own, found in the current folder)."""
    password_source: str | None = None
    """Where the password comes from (``password_command in FILE``, ...), for messages."""
    secret_sources: SecretSources | None = field(default=None, compare=False)
    """The indirect secrets not resolved yet; see ``with_secrets``."""

    def with_secrets(self) -> Settings:
        """These settings with ``password`` and ``oauth_token`` resolved from wherever the
        configuration gives them (running ``password_command``, reading ``password_env``),
        when a user name is set, for nothing uses a secret without one. Secrets already set
        are kept."""
        sources = self.secret_sources
        if sources is None or not self.username:
            return self
        password = self.password if self.password is not None else sources.resolve("password")
        token = (self.oauth_token if self.oauth_token is not None
                 else sources.resolve("oauth_token"))
        return dataclasses.replace(self, password=password, oauth_token=token,
                                   secret_sources=None)

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None or value is False or item.name in _NOT_SHOWN:
                continue
            if item.name in _SECRETS:
                value = "<redacted>"
            elif item.name == "proxy":
                value = redact_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"
