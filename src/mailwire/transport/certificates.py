"""Checking a server certificate with the caller's validation callback, after the handshake.

With a callback set, the handshake itself accepts any certificate; this module then runs the
usual checks (chain to a trusted CA, validity, host name) with the ``cryptography`` library and
hands the certificate, the host and the first failure (or None) to the callback, whose answer
decides: only ``True`` accepts (an error string, ``NotImplemented`` or a list does not). Only
the leaf certificate is available here, so a server that relies on sending intermediate
certificates shows up as an untrusted issuer for the callback to judge.
"""

from __future__ import annotations

import contextlib
import ipaddress
import ssl
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from mailwire.errors import SmtpSecurityError
from mailwire.transport.tls import TlsSettings


def check_with_callback(der: bytes | None, host: str, settings: TlsSettings) -> None:
    """Raise unless the validation callback accepts the peer certificate ``der``."""
    callback = settings.validation_callback
    if callback is None:
        return
    if der is None:
        raise SmtpSecurityError(f"{host} presented no certificate")
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as failure:
        raise SmtpSecurityError(f"the certificate of {host} cannot be parsed: {failure}") from None
    error = None if settings.skip_verification else verification_error(certificate, host, settings)
    try:
        accepted = callback(certificate, host, error)
    except Exception as failure:
        raise SmtpSecurityError(f"the certificate validation callback failed: {failure}") from None
    if accepted is not True:
        reason = f" ({error})" if error else ""
        answer = "" if accepted is False else (
            f"; it returned a {type(accepted).__name__}, and only True accepts")
        raise SmtpSecurityError(
            f"the certificate of {host} was rejected by the validation callback{reason}{answer}"
        )


def verification_error(certificate: x509.Certificate, host: str,
                       settings: TlsSettings) -> str | None:
    """Why the usual checks reject ``certificate`` for ``host``, or None when they pass."""
    try:
        store = Store(_trusted_certificates(settings))
    except ValueError as failure:
        return f"no trusted certificate authorities: {failure}"
    try:
        subject: DNSName | IPAddress = IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = DNSName(host)
    builder = PolicyBuilder().store(store).time(datetime.now(UTC))
    try:
        verifier = _like_openssl(builder).build_server_verifier(subject)
        verifier.verify(certificate, [])
    except Exception as failure:
        return str(failure)
    return None


def _like_openssl(builder: PolicyBuilder) -> PolicyBuilder:
    """``builder`` with the server certificate checked the way OpenSSL's handshake does.

    cryptography's Web PKI defaults also judge how extensions are marked (a critical
    subjectAltName or extendedKeyUsage fails), which OpenSSL, and so a verifying handshake,
    accepts; the callback would then hear of an error for a certificate the handshake takes.
    Here the leaf needs a subjectAltName, and its key usages must allow a TLS server, marked
    critical or not; the CA rules stay cryptography's. Older cryptography (no
    ``ExtensionPolicy``) keeps its defaults.
    """
    try:
        from cryptography.x509.verification import Criticality, ExtensionPolicy
    except ImportError:  # pragma: no cover - cryptography < 45
        return builder
    server = (ExtensionPolicy.permit_all()
              .require_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
              .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _server_usage)
              .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _server_key_usage))
    return builder.extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                      ee_policy=server)


def _server_usage(_policy: object, _certificate: x509.Certificate,
                  usage: x509.ExtendedKeyUsage | None) -> None:
    if usage is None:
        return
    if not {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
            } & set(usage):
        raise ValueError("the certificate is not for TLS servers (extendedKeyUsage)")


def _server_key_usage(_policy: object, _certificate: x509.Certificate,
                      usage: x509.KeyUsage | None) -> None:
    if usage is None:
        return
    if not (usage.digital_signature or usage.key_encipherment or usage.key_agreement):
        raise ValueError("the certificate's key may not be used by a TLS server (keyUsage)")


def _trusted_certificates(settings: TlsSettings) -> list[x509.Certificate]:
    """The CA certificates a verifying handshake would trust.

    OpenSSL looks certificates up in a CA folder lazily, by hash, so ``get_ca_certs`` lists
    none of them: the folder's files are loaded one by one here (the system's folder only
    when its bundle files gave nothing). A certificate ``cryptography`` cannot parse is left
    out rather than failing every check.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts nothing yet
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=settings.ca_file)
    if settings.ca_path is not None:
        _load_files(context, _folder_files(settings.ca_path))
    elif settings.ca_file is None:
        paths = ssl.get_default_verify_paths()
        _load_files(context, [bundle for bundle in (paths.cafile, paths.openssl_cafile)
                              if bundle])
        if not context.get_ca_certs():
            for folder in (paths.capath, paths.openssl_capath):
                if folder:
                    _load_files(context, _folder_files(folder))
    trusted = []
    for der in context.get_ca_certs(binary_form=True):
        with contextlib.suppress(ValueError):
            trusted.append(x509.load_der_x509_certificate(der))
    return trusted


def _folder_files(folder: str) -> list[str]:
    try:
        return sorted(str(entry) for entry in Path(folder).iterdir() if entry.is_file())
    except OSError:
        return []


def _load_files(context: ssl.SSLContext, files: list[str]) -> None:
    for name in dict.fromkeys(files):
        with contextlib.suppress(OSError, ssl.SSLError):
            context.load_verify_locations(cafile=name)
