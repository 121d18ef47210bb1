"""``Settings``: the typed, validated result of loading a configuration.

A field left at None was set nowhere, and the client's own default applies. Secrets are resolved
(``password_env``, ``password_command``) unless loading was asked not to; they never appear in
the repr, and neither do proxy credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from mailwire.auth import SmtpKnownAuthenticationType
from mailwire.security import SecurityOptions
from mailwire.transport.proxy import redact_url
from mailwire.transport.tls import EncryptionProtocols

_SECRETS = frozenset({"password", "oauth_token"})


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
    source: Path | None = None
    """The file the settings were read from; None when only the environment was used."""
    profile: str | None = None
    """The profile chosen in that file, if any."""
    password_source: str | None = None
    """Where the password comes from (``password_command in FILE``, ...), for messages."""

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None or value is False or item.name == "password_source":
                continue
            if item.name in _SECRETS:
                value = "<redacted>"
            elif item.name == "proxy":
                value = redact_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"
