"""The settings every client front shares, as plain attributes, and what they turn into.

``ClientOptions`` holds host, port, credentials, security mode, timeouts, authentication choice,
default sender, proxy, local address and TLS options, each checked as it is set (see
``mailwire.option_checks``). Any attribute may be changed at any time; the change takes effect
on the next connection. ``_session_settings()`` freezes them for one connection.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Mapping
from typing import ClassVar, Self

from mailwire import option_checks
from mailwire.auth import (
    AllowedAuthentication,
    Credentials,
    OAuthTokenSource,
    Secret,
    SmtpKnownAuthenticationType,
)
from mailwire.auth.tokens import wrapped
from mailwire.config import Settings, apply_settings, load_settings, require_host
from mailwire.conversation.channel import Login
from mailwire.conversation.client_core import ClientCore
from mailwire.conversation.envelope import DsnDefaults
from mailwire.conversation.session import SessionSettings
from mailwire.dsn import DeliveryNotificationOptions, return_value
from mailwire.errors import SmtpUsageError
from mailwire.message import PreparedMessage
from mailwire.message.dkim_signer import DkimSigner
from mailwire.outgoing import Outgoing
from mailwire.pickup import SmtpDeliveryMethod, write_to_pickup
from mailwire.results import SendResult
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
from mailwire.warning_categories import InsecureSettingWarning, warn

BindEndpoint = LocalAddress | Callable[[tuple[str, int]], LocalAddress]
_log = logging.getLogger("mailwire.tls")


class ClientOptions:
    """Connection, authentication and TLS settings of a client.

    Every parameter is also an attribute of the same name that may be changed at any time; a
    change takes effect on the next connection. Durations are seconds (not milliseconds, as in
    Aspose.Email). Only ``password`` and ``oauth_token`` are secrets: they never appear in a
    repr, a log or an error. Everything else may show in reprs, the protocol log and error
    messages (a proxy's credentials redacted), and is safe to paste into a bug report.

    The constructor's parameters, with their units and defaults: ``help(ClientOptions.__init__)``
    (shown by ``help(SmtpClient)`` too).
    """

    _warns_without_verification: ClassVar[bool] = True

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
        default_sender: str | None = None,
        delivery_notification_options: DeliveryNotificationOptions | str = (
            DeliveryNotificationOptions.NONE),
        dsn_return: str | None = None,
        require_dsn: bool = True,
        delivery_method: SmtpDeliveryMethod | str = SmtpDeliveryMethod.NETWORK,
        pickup_directory_location: str | os.PathLike[str] | None = None,
        dkim_signer: DkimSigner | None = None,
    ) -> None:
        """The client's settings; nothing connects until an operation needs to.

        Each parameter is also an attribute that may be changed at any time (it takes effect
        on the next connection). Durations are seconds. ``password`` and ``oauth_token`` are
        secrets: never shown in a repr, a log or an error. The rest may show there (a proxy's
        credentials redacted) and is safe to paste into a bug report.

        host: the SMTP server's name or address; also the name its certificate must carry.
        port: 1-65535; None (default) means 465 for SSL_IMPLICIT and 587 otherwise.
        username, password: log in with AUTH when ``username`` is set (default: no login).
        security: ``SecurityOptions`` or its name (``"ssl_explicit"``, ``"starttls"``, ...);
            default AUTO: implicit TLS or STARTTLS, plaintext only when the server offers no TLS.
        timeout: seconds for connecting, the proxy handshake, the TLS handshake, each reply and
            each write (default 100). Must be positive; above ten minutes it warns, as a value in
            milliseconds would.
        greeting_timeout: seconds to wait for the server's greeting (default 10); in AUTO, how long
            a silent server is given before it is taken for one that waits for a TLS ClientHello.
        oauth_token: an OAuth 2 access token for XOAUTH2, used instead of the password.
        allowed_authentication: the SASL mechanisms you permit (default: all); the strongest one
            the server also offers is used.
        allow_plaintext_credentials: send credentials over an unencrypted connection (default
            False: refused, with an error).
        local_hostname: the name given in EHLO (default: the local address as a literal).
        default_sender: the envelope sender (and From) of a message that names none, when no
            ``sender=`` is given (default None; ``from_config`` sets it from the configuration's
            ``sender`` or .NET ``from``).
        delivery_notification_options: when to ask for delivery status notifications (RFC 3461)
            for messages that do not say (``ON_FAILURE | DELAY``, ``"failure,delay"``); default
            NONE: nothing asked, the servers' default applies.
        dsn_return: ``"full"`` or ``"headers"``: what a failure report carries (default None:
            the server's choice).
        require_dsn: with notifications asked for and a server that does not offer DSN, refuse
            the message (default True) or send it without them (False).
        delivery_method: ``SmtpDeliveryMethod.NETWORK`` (default) or
            ``SPECIFIED_PICKUP_DIRECTORY``: write each message as an ``.eml`` file into
            ``pickup_directory_location`` instead of sending it (``mailwire.pickup``).
        dkim_signer: a ``mailwire.DkimSigner`` that signs every message as it is sent, after
            mailwire's own changes (default None: messages are sent unsigned).
        proxy: a ``SocksProxy``, an ``HttpProxy`` or a URL (``socks5h://user:pass@host:1080``).
        bind_endpoint: the local ``(address, port)`` to connect from (port 0: any), or a callable
            ``(remote host, port) -> (address, port)``.
        supported_encryption: ``EncryptionProtocols`` to allow (default NONE: the runtime's
            choice); versions the runtime lacks are dropped, and so is anything below a gap
            (``set_supported_encryption_unsafe`` requires exactly the versions given).
        ssl_context: an ``ssl.SSLContext`` used unchanged (then no other TLS option may be set).
        ca_file, ca_path: trust these certificate authorities instead of the system's.
        client_certificate: a PEM file (with its key), or ``(certificate file, key file)``.
        certificate_validation_callback: ``(certificate, host, error or None) -> bool`` decides
            whether a certificate is accepted; only ``True`` accepts.
        dangerously_skip_certificate_verification: accept any certificate for any name (test
            servers only); it warns (``InsecureSettingWarning``) and shows in the repr.
        """
        misplaced = option_checks.misplaced_port(host, port, username)
        if misplaced is not None:
            raise misplaced
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
        self.default_sender = default_sender
        self.delivery_notification_options = delivery_notification_options
        self.dsn_return = dsn_return
        self.require_dsn = require_dsn
        self.delivery_method = delivery_method
        self.pickup_directory_location = pickup_directory_location
        self.dkim_signer = dkim_signer
        self._core = ClientCore(self._session_settings, login=self._login)

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, profile: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Self:
        """A client from a configuration file (.NET app.config, TOML, ``[tool.mailwire]``) and
        ``MAILWIRE_*`` variables; see ``mailwire.config`` for the keys and the search order."""
        return cls.from_settings(load_settings(
            path, profile, os.environ if environ is None else environ, resolve_secrets=False))

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """A client with every option ``settings`` give (``mailwire.config.load_settings``);
        a secret the configuration gives indirectly is resolved only once a host is known and
        when a user name is set."""
        client = cls(require_host(settings))
        apply_settings(settings.with_secrets(), client)
        return client

    # -- properties with rules -----------------------------------------------------------------

    @property
    def port(self) -> int | None:
        return self._port

    @port.setter
    def port(self, value: int | None) -> None:
        self._port = option_checks.port(value)

    @property
    def timeout(self) -> float:
        """Seconds for each phase but the greeting; see the class docstring."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._timeout = option_checks.seconds("timeout", value)
        self._warn_once_if_milliseconds("timeout", self._timeout)

    @property
    def greeting_timeout(self) -> float:
        """Seconds to wait for the greeting; see the class docstring."""
        return self._greeting_timeout

    @greeting_timeout.setter
    def greeting_timeout(self, value: float) -> None:
        self._greeting_timeout = option_checks.seconds("greeting_timeout", value)
        self._warn_once_if_milliseconds("greeting_timeout", self._greeting_timeout)

    def _warn_once_if_milliseconds(self, name: str, value: float) -> None:
        warned: set[str] = self.__dict__.setdefault("_warned_units", set())
        if name not in warned and value > option_checks.PLAUSIBLE_SECONDS:
            warned.add(name)
            option_checks.warn_if_milliseconds(name, value)

    @property
    def default_sender(self) -> str | None:
        """The sender of a message that names none; see the class docstring."""
        return self._default_sender

    @default_sender.setter
    def default_sender(self, value: str | None) -> None:
        if value is not None and (not isinstance(value, str) or not value.strip()
                                  or any(ord(c) < 32 or ord(c) == 127 for c in value)):
            raise SmtpUsageError(f"default_sender must be an address without control "
                                 f"characters, or None; got {value!r}")
        self._default_sender = value

    @property
    def delivery_notification_options(self) -> DeliveryNotificationOptions:
        """When delivery status notifications are asked for; see the class docstring."""
        return self._notify

    @delivery_notification_options.setter
    def delivery_notification_options(self, value: DeliveryNotificationOptions | str) -> None:
        notify = DeliveryNotificationOptions.parse(value)
        notify.notify_value()  # NEVER with others fails here, not at the first send
        self._notify = notify

    @property
    def delivery_method(self) -> SmtpDeliveryMethod:
        return self._delivery_method

    @delivery_method.setter
    def delivery_method(self, value: SmtpDeliveryMethod | str) -> None:
        self._delivery_method = SmtpDeliveryMethod.parse(value)

    def _prepared(self, outgoing: Outgoing) -> PreparedMessage:
        """``outgoing`` read for sending (envelope checked, Bcc removed)."""
        prepared = self._core.ticket(outgoing, self.default_sender, self.dkim_signer).prepared
        assert prepared is not None
        return prepared

    def _to_pickup(self, outgoing: Outgoing) -> SendResult:
        return write_to_pickup(self._prepared(outgoing), self.pickup_directory_location)

    @property
    def dsn_return(self) -> str | None:
        return self._dsn_return

    @dsn_return.setter
    def dsn_return(self, value: str | None) -> None:
        return_value(value)
        self._dsn_return = value

    @property
    def dkim_signer(self) -> DkimSigner | None:
        """Signs every message with DKIM as it is sent; see the class docstring."""
        return self._dkim_signer

    @dkim_signer.setter
    def dkim_signer(self, value: DkimSigner | None) -> None:
        if value is not None and not isinstance(value, DkimSigner):
            raise SmtpUsageError(f"dkim_signer must be a mailwire.DkimSigner or None, not "
                                 f"{type(value).__name__}")
        self._dkim_signer = value

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
    def dangerously_skip_certificate_verification(self) -> bool:
        """Accept any certificate for any name (test servers only). Turning it on warns
        (``InsecureSettingWarning``, once per client) and shows in the repr."""
        return self._skip_verification

    @dangerously_skip_certificate_verification.setter
    def dangerously_skip_certificate_verification(self, value: bool) -> None:
        self._skip_verification = bool(value)
        if value and self._warns_without_verification and not getattr(
                self, "_warned_skip_verification", False):
            self._warned_skip_verification = True
            warn(f"certificate verification is off for {self.host} "
                 "(dangerously_skip_certificate_verification=True): anyone on the network path "
                 "can read and change the connection, credentials included",
                 InsecureSettingWarning)

    @property
    def proxy(self) -> Proxy | None:
        return self._proxy

    @proxy.setter
    def proxy(self, value: Proxy | str | None) -> None:
        self._proxy = None if value is None else parse_proxy(value)

    @property
    def supported_encryption(self) -> EncryptionProtocols:
        """The TLS versions in effect. Setting it quietly drops what the runtime cannot do, and
        keeps only the highest run of consecutive versions (TLS10|TLS12 gives TLS12: TLS
        libraries negotiate a range without gaps), logging what it dropped."""
        return self._encryption

    @supported_encryption.setter
    def supported_encryption(self, value: EncryptionProtocols) -> None:
        available = value & tls.runtime_protocols()
        kept, dropped = tls.highest_run(available)
        if value & ~available:
            _log.info("TLS versions %s dropped: this Python/OpenSSL cannot negotiate them",
                      tls.describe(value & ~available))
        if dropped:
            _log.warning("TLS versions %s dropped: they are separated from %s by a version "
                         "not asked for, and TLS negotiates a range without gaps",
                         tls.describe(dropped), tls.describe(kept))
        self._encryption = kept
        self._exact_encryption = False

    def set_supported_encryption_unsafe(self, value: EncryptionProtocols) -> None:
        """Require exactly these TLS versions: connecting fails if the runtime cannot do them,
        and a set with a gap (TLS10|TLS12) is a SmtpUsageError naming the gap."""
        if value:
            tls.check_no_gap(value)
        self._encryption = value
        self._exact_encryption = True

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else self.security.default_port()

    # -- freezing for one connection -----------------------------------------------------------

    def _tls_settings(self) -> TlsSettings:
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

    def _endpoint(self) -> Endpoint:
        settings = self._tls_settings()
        if self._security is not SecurityOptions.NONE:
            context_for(settings)  # a TLS option that cannot work fails here, before connecting
        port = self.effective_port
        proxy = self._proxy
        bind = self.bind_endpoint
        if callable(bind):
            remote = (proxy.host, proxy.port) if proxy is not None else (self.host, port)
            bind = bind(remote)
        return Endpoint(self.host, port, settings, proxy, bind)

    def _credentials(self) -> Credentials | None:
        """The user name with the password and OAuth token (or token provider), secrets wrapped
        here so that no frame of the check below holds them as plain text."""
        if self.username is None:
            return None
        return Credentials(self.username, Secret.of(self.password), wrapped(self.oauth_token))

    def _login(self) -> Login:
        """How the next login goes (read when a connection authenticates)."""
        return Login(self._credentials(), self.allowed_authentication,
                     self.allow_plaintext_credentials)

    def _session_settings(self) -> SessionSettings:
        return SessionSettings(
            endpoint=self._endpoint(),
            security=self._security,
            timeout=self.timeout,
            greeting_timeout=self.greeting_timeout,
            local_hostname=self.local_hostname,
            credentials=self._credentials(),
            allowed_authentication=self.allowed_authentication,
            allow_plaintext_credentials=self.allow_plaintext_credentials,
            dsn=DsnDefaults(self._notify, self._dsn_return, self.require_dsn),
        )

    def _describe(self, kind: str, connected: bool) -> str:
        state = "connected" if connected else "not connected"
        user = f" user={self.username!r}" if self.username else ""
        via = f" via {self._proxy.describe()}" if self._proxy else ""
        if self._skip_verification:
            via += " CERTIFICATE-VERIFICATION-OFF"
        return (f"<{kind} {self.host}:{self.effective_port} {self._security.name}{user}{via} "
                f"{state}>")


__all__ = ["BindEndpoint", "ClientOptions", "HttpProxy", "SocksProxy"]
