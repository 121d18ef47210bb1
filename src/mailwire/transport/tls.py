"""TLS settings and the ``ssl.SSLContext`` built from them.

Verification is on by default: the system's certificate authorities (or a given CA file or
folder) and the SMTP host name. ``EncryptionProtocols`` restricts the TLS versions; a caller's own
``ssl.SSLContext`` is used unchanged, and then no other TLS option may be set.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import Flag
from typing import TYPE_CHECKING

from mailwire.errors import SmtpSecurityError, SmtpUsageError

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

CertificateValidationCallback = Callable[["Certificate", str, "str | None"], bool]
"""``(certificate, host, verify_error) -> accept``; ``verify_error`` is None when the certificate
passed the usual checks."""


class EncryptionProtocols(Flag):
    """TLS protocol versions; NONE (alias NOT_SPECIFIED) leaves the choice to the runtime."""

    NONE = 0
    NOT_SPECIFIED = 0
    TLS10 = 1
    TLS11 = 2
    TLS12 = 4
    TLS13 = 8


_VERSIONS = (
    (EncryptionProtocols.TLS10, ssl.TLSVersion.TLSv1, "HAS_TLSv1"),
    (EncryptionProtocols.TLS11, ssl.TLSVersion.TLSv1_1, "HAS_TLSv1_1"),
    (EncryptionProtocols.TLS12, ssl.TLSVersion.TLSv1_2, "HAS_TLSv1_2"),
    (EncryptionProtocols.TLS13, ssl.TLSVersion.TLSv1_3, "HAS_TLSv1_3"),
)
_LEGACY = EncryptionProtocols.TLS10 | EncryptionProtocols.TLS11


def runtime_protocols() -> EncryptionProtocols:
    """The versions this Python and OpenSSL can negotiate."""
    available = EncryptionProtocols.NONE
    for flag, _version, attribute in _VERSIONS:
        if getattr(ssl, attribute, False):
            available |= flag
    return available


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Everything that decides how TLS is set up; ``context()`` builds the SSLContext."""

    protocols: EncryptionProtocols = EncryptionProtocols.NONE
    exact_protocols: bool = False
    ca_file: str | None = None
    ca_path: str | None = None
    client_certificate: str | tuple[str, str] | None = None
    validation_callback: CertificateValidationCallback | None = None
    skip_verification: bool = False
    ssl_context: ssl.SSLContext | None = None

    def context(self) -> ssl.SSLContext:
        if self.ssl_context is not None:
            if self != TlsSettings(ssl_context=self.ssl_context):
                raise SmtpUsageError("ssl_context is used unchanged: set the TLS versions, CA, "
                                     "client certificate and verification on it instead")
            return self.ssl_context
        try:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=self.ca_file, capath=self.ca_path
            )
        except (OSError, ssl.SSLError) as error:
            where = self.ca_file if self.ca_file is not None else self.ca_path
            raise SmtpUsageError(f"cannot load the certificate authorities from {where!r}: "
                                 f"{getattr(error, 'strerror', None) or error}") from None
        if self.client_certificate is not None:
            certificate, key = (self.client_certificate
                                if isinstance(self.client_certificate, tuple)
                                else (self.client_certificate, None))
            try:
                context.load_cert_chain(certificate, key)
            except (OSError, ssl.SSLError) as error:
                raise SmtpUsageError(f"cannot load the client certificate {certificate!r}: "
                                     f"{error}") from None
        if self.skip_verification or self.validation_callback is not None:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._restrict_versions(context)
        return context

    def _restrict_versions(self, context: ssl.SSLContext) -> None:
        wanted = self.protocols
        if not wanted:
            return
        missing = wanted & ~runtime_protocols()
        if missing and self.exact_protocols:
            raise SmtpSecurityError(f"TLS versions {describe(missing)} were required, but this "
                                    "Python/OpenSSL cannot negotiate them")
        chosen = [version for flag, version, _ in _VERSIONS if flag & wanted & ~missing]
        if not chosen:
            raise SmtpSecurityError(f"none of the TLS versions {describe(wanted)} is available")
        context.minimum_version, context.maximum_version = chosen[0], chosen[-1]
        for flag, _version, _ in _VERSIONS:
            if not flag & wanted and chosen[0] < _version < chosen[-1]:
                context.options |= _exclusion(flag)
        if wanted & ~missing & _LEGACY:
            # OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")


def _exclusion(flag: EncryptionProtocols) -> ssl.Options:
    return {
        EncryptionProtocols.TLS10: ssl.OP_NO_TLSv1,
        EncryptionProtocols.TLS11: ssl.OP_NO_TLSv1_1,
        EncryptionProtocols.TLS12: ssl.OP_NO_TLSv1_2,
        EncryptionProtocols.TLS13: ssl.OP_NO_TLSv1_3,
    }[flag]


def describe(protocols: EncryptionProtocols) -> str:
    return "|".join(flag.name or "" for flag, _v, _a in _VERSIONS if flag & protocols) or "NONE"


def describe_offered(settings: TlsSettings) -> str:
    """The TLS versions a handshake with ``settings`` offers, for error messages."""
    if settings.ssl_context is not None:
        return "the versions of the given ssl_context"
    if not settings.protocols:
        return "the runtime's default versions"
    usable = settings.protocols if settings.exact_protocols else (
        settings.protocols & runtime_protocols())
    return describe(usable)


@functools.lru_cache(maxsize=16)
def context_for(settings: TlsSettings) -> ssl.SSLContext:
    """The context for ``settings``, built once (loading CAs costs milliseconds) and shared by
    every connection, thread and client with the same settings."""
    return settings.context()


def default_context() -> ssl.SSLContext:
    """A client context that verifies the certificate chain and the host name."""
    return TlsSettings().context()
