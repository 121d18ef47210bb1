"""TLS settings and the ``ssl.SSLContext`` built from them.

Verification is on by default: the system's certificate authorities (or a given CA file or
folder) and the SMTP host name. ``EncryptionProtocols`` restricts the TLS versions; a caller's own
``ssl.SSLContext`` is used unchanged, and then no other TLS option may be set.

OpenSSL negotiates between a lowest and a highest version, so a set of versions is used as its
highest run of consecutive versions (``highest_run``): TLS10|TLS12 means TLS 1.2. Required
versions (``exact_protocols``) with a gap are refused (``check_no_gap``).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import Flag
from typing import TYPE_CHECKING

from mailwire.errors import SmtpSecurityError, SmtpUsageError
from mailwire.transport import resumption

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
        if self.exact_protocols:
            check_no_gap(wanted)
        usable, _dropped = highest_run(wanted & ~missing)
        if not usable:
            raise SmtpSecurityError(f"none of the TLS versions {describe(wanted)} is available")
        chosen = [version for flag, version, _ in _VERSIONS if flag & usable]
        context.minimum_version, context.maximum_version = chosen[0], chosen[-1]
        if usable & _LEGACY:
            # OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")


def highest_run(protocols: EncryptionProtocols) -> tuple[EncryptionProtocols, EncryptionProtocols]:
    """``(kept, dropped)``: the highest run of consecutive versions in ``protocols``, and the
    rest. OpenSSL negotiates between a lowest and a highest version, so a set with a gap
    (TLS10|TLS12) cannot be asked of it as such: it would settle on the run below the gap."""
    kept = EncryptionProtocols.NONE
    for flag, _version, _attribute in reversed(_VERSIONS):
        if flag & protocols:
            kept |= flag
        elif kept:
            break
    return kept, protocols & ~kept


def check_no_gap(protocols: EncryptionProtocols) -> None:
    """Refuse a set of versions with a gap: OpenSSL cannot negotiate it."""
    kept, dropped = highest_run(protocols)
    if not dropped:
        return
    flags = [flag for flag, _version, _attribute in _VERSIONS]
    present = [index for index, flag in enumerate(flags) if flag & protocols]
    gap = EncryptionProtocols.NONE
    for flag in flags[present[0]:present[-1] + 1]:
        if not flag & protocols:
            gap |= flag
    raise SmtpUsageError(
        f"TLS versions {describe(protocols)} leave out {describe(gap)} between them, and "
        "TLS libraries negotiate a range of versions without gaps: ask for "
        f"{describe(protocols | gap)} or {describe(kept)}")


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
    every connection, thread and client with the same settings; the contexts mailwire builds
    resume TLS sessions (``resumption``)."""
    context = settings.context()
    return context if settings.ssl_context is not None else resumption.enable(context)


def default_context() -> ssl.SSLContext:
    """A client context that verifies the certificate chain and the host name."""
    return TlsSettings().context()
