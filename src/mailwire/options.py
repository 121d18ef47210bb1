"""The settings every client front shares, as plain attributes, and what they turn into.

``ClientOptions`` holds host, port, credentials, security mode, timeouts, authentication choice,
proxy, local address and TLS options. Any attribute may be changed at any time; the change takes
effect on the next connection. ``session_settings()`` freezes them for one connection.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from typing import Self

from mailwire.auth import (
    AllowedAuthentication,
    Credentials,
    OAuthTokenSource,
    Secret,
    SmtpKnownAuthenticationType,
)
from mailwire.auth.tokens import wrapped
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.session import SessionSettings
from mailwire.errors import SmtpUsageError
from mailwire.security import SecurityOptions
from mailwire.transport import tls
from mailwire.transport.endpoint import Endpoint, LocalAddress
from mailwire.transport.proxy import HttpProxy, Proxy, SocksProxy, parse_proxy
from mailwire.transport.tls import (
    CertificateValidationCallback,
    EncryptionProtocols,
    TlsSettings,
    context_for,
)

BindEndpoint = LocalAddress | Callable[[tuple[str, int]], LocalAddress]


class ClientOptions:
    """Connection, authentication and TLS settings of a client."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        security: SecurityOptions | str = SecurityOptions.AUTO,
        *,
        timeout: float = 100.0,
        greeting_timeout: float = 10.0,
        oauth_token: OAuthTokenSource | None = None,
        allowed_authentication: AllowedAuthentication = SmtpKnownAuthenticationType.ALL,
        allow_plaintext_credentials: bool = False,
        local_hostname: str | None = None,
        proxy: Proxy | str | None = None,
        bind_endpoint: BindEndpoint | None = None,
        supported_encryption: EncryptionProtocols = EncryptionProtocols.NONE,
        ssl_context: ssl.SSLContext | None = None,
        ca_file: str | None = None,
        ca_path: str | None = None,
        client_certificate: str | tuple[str, str] | None = None,
        certificate_validation_callback: CertificateValidationCallback | None = None,
        dangerously_skip_certificate_verification: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.security = security
        self.timeout = timeout
        self.greeting_timeout = greeting_timeout
        self.oauth_token = oauth_token
        self.allowed_authentication = allowed_authentication
        self.allow_plaintext_credentials = allow_plaintext_credentials
        self.local_hostname = local_hostname
        self.proxy = proxy
        self.bind_endpoint = bind_endpoint
        self.supported_encryption = supported_encryption
        self.ssl_context = ssl_context
        self.ca_file = ca_file
        self.ca_path = ca_path
        self.client_certificate = client_certificate
        self.certificate_validation_callback = certificate_validation_callback
        self.dangerously_skip_certificate_verification = dangerously_skip_certificate_verification
        self._core = ClientCore(self.session_settings)

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, profile: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Self:
        """A client from a configuration file (.NET app.config, TOML, ``[tool.mailwire]``) and
        ``MAILWIRE_*`` variables; see ``mailwire.config`` for the keys and the search order."""
        from mailwire.config import apply_settings, load_settings
        from mailwire.config.client import require_host

        settings = load_settings(path, profile, os.environ if environ is None else environ)
        client = cls(require_host(settings))
        apply_settings(settings, client)
        return client

    # -- properties with rules -----------------------------------------------------------------

    @property
    def security(self) -> SecurityOptions:
        return self._security

    @security.setter
    def security(self, value: SecurityOptions | str) -> None:
        try:
            self._security = SecurityOptions.parse(value)
        except ValueError as error:
            raise SmtpUsageError(str(error)) from None

    @property
    def proxy(self) -> Proxy | None:
        return self._proxy

    @proxy.setter
    def proxy(self, value: Proxy | str | None) -> None:
        self._proxy = None if value is None else parse_proxy(value)

    @property
    def supported_encryption(self) -> EncryptionProtocols:
        """The TLS versions in effect; setting it quietly drops what the runtime cannot do."""
        return self._encryption

    @supported_encryption.setter
    def supported_encryption(self, value: EncryptionProtocols) -> None:
        self._encryption = value & tls.runtime_protocols()
        self._exact_encryption = False

    def set_supported_encryption_unsafe(self, value: EncryptionProtocols) -> None:
        """Require exactly these TLS versions; connecting fails if the runtime cannot do them."""
        self._encryption = value
        self._exact_encryption = True

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else self.security.default_port()

    # -- freezing for one connection -----------------------------------------------------------

    def tls_settings(self) -> TlsSettings:
        return TlsSettings(
            protocols=self._encryption,
            exact_protocols=self._exact_encryption,
            ca_file=self.ca_file,
            ca_path=self.ca_path,
            client_certificate=self.client_certificate,
            validation_callback=self.certificate_validation_callback,
            skip_verification=self.dangerously_skip_certificate_verification,
            ssl_context=self.ssl_context,
        )

    def endpoint(self) -> Endpoint:
        settings = self.tls_settings()
        if self._security is not SecurityOptions.NONE:
            context_for(settings)  # a TLS option that cannot work fails here, before connecting
        port = self.effective_port
        proxy = self._proxy
        bind = self.bind_endpoint
        if callable(bind):
            remote = (proxy.host, proxy.port) if proxy is not None else (self.host, port)
            bind = bind(remote)
        return Endpoint(self.host, port, settings, proxy, bind)

    def credentials(self) -> Credentials | None:
        """The user name with the password and OAuth token (or token provider), secrets wrapped
        here so that no frame of the check below holds them as plain text."""
        if self.username is None:
            return None
        return Credentials(self.username, Secret.of(self.password), wrapped(self.oauth_token))

    def session_settings(self) -> SessionSettings:
        return SessionSettings(
            endpoint=self.endpoint(),
            security=self._security,
            timeout=self.timeout,
            greeting_timeout=self.greeting_timeout,
            local_hostname=self.local_hostname,
            credentials=self.credentials(),
            allowed_authentication=self.allowed_authentication,
            allow_plaintext_credentials=self.allow_plaintext_credentials,
        )

    def _describe(self, kind: str, connected: bool) -> str:
        state = "connected" if connected else "not connected"
        user = f" user={self.username!r}" if self.username else ""
        via = f" via {self._proxy.describe()}" if self._proxy else ""
        return (f"<{kind} {self.host}:{self.effective_port} {self._security.name}{user}{via} "
                f"{state}>")


__all__ = ["BindEndpoint", "ClientOptions", "HttpProxy", "SocksProxy"]
