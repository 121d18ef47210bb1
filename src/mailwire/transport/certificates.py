"""Checking a server certificate with the caller's validation callback, after the handshake.

With a callback set, the handshake itself accepts any certificate; this module then runs the
usual checks (chain to a trusted CA, validity, host name) with the ``cryptography`` library and
hands the certificate, the host and the first failure (or None) to the callback, whose answer
decides. Only the leaf certificate is available here, so a server that relies on sending
intermediate certificates shows up as an untrusted issuer for the callback to judge.
"""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
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
    certificate = x509.load_der_x509_certificate(der)
    error = None if settings.skip_verification else verification_error(certificate, host, settings)
    try:
        accepted = callback(certificate, host, error)
    except Exception as failure:
        raise SmtpSecurityError(f"the certificate validation callback failed: {failure}") from None
    if not accepted:
        reason = f" ({error})" if error else ""
        raise SmtpSecurityError(
            f"the certificate of {host} was rejected by the validation callback{reason}"
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
    verifier = PolicyBuilder().store(store).time(datetime.now(UTC)).build_server_verifier(subject)
    try:
        verifier.verify(certificate, [])
    except Exception as failure:
        return str(failure)
    return None


def _trusted_certificates(settings: TlsSettings) -> list[x509.Certificate]:
    context = ssl.create_default_context(cafile=settings.ca_file, capath=settings.ca_path)
    if settings.ca_file is None and settings.ca_path is None:
        paths = ssl.get_default_verify_paths()
        for bundle in (paths.cafile, paths.openssl_cafile):
            if bundle:
                try:
                    context.load_verify_locations(cafile=bundle)
                except (OSError, ssl.SSLError):
                    continue
    ders = context.get_ca_certs(binary_form=True)
    return [x509.load_der_x509_certificate(der) for der in ders]
