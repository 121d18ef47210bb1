"""What ``probe`` tells about a server certificate (DER, from ``ConnectionInfo``)."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import ExtensionOID


@dataclass(frozen=True, slots=True)
class CertificateSummary:
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    names: tuple[str, ...]
    """Subject alternative names: DNS names and IP addresses."""
    host_name_matches: bool
    trusted: bool
    """Whether the chain verified with the trust store in use (system CAs, or ``--ca-file``)."""
    verify_error: str | None
    sha256: str

    @property
    def days_left(self) -> int:
        return (self.not_after - datetime.now(UTC)).days

    @property
    def expired(self) -> bool:
        return self.not_after < datetime.now(UTC)

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    def as_dict(self) -> dict[str, object]:
        return {
            "subject": self.subject, "issuer": self.issuer,
            "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
            "days_left": self.days_left, "expired": self.expired, "names": list(self.names),
            "host_name_matches": self.host_name_matches, "trusted": self.trusted,
            "verify_error": self.verify_error, "self_signed": self.self_signed,
            "sha256": self.sha256,
        }


def summarize(der: bytes, host: str, verify_error: str | None) -> CertificateSummary:
    certificate = x509.load_der_x509_certificate(der)
    names = subject_alternative_names(certificate)
    return CertificateSummary(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        names=names,
        host_name_matches=host_matches(host, names),
        trusted=verify_error is None,
        verify_error=verify_error,
        sha256=hashlib.sha256(der).hexdigest(),
    )


def subject_alternative_names(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = certificate.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return ()
    names = extension.value
    assert isinstance(names, x509.SubjectAlternativeName)
    dns = names.get_values_for_type(x509.DNSName)
    addresses = [str(address) for address in names.get_values_for_type(x509.IPAddress)]
    return (*dns, *addresses)


def host_matches(host: str, names: tuple[str, ...]) -> bool:
    """RFC 6125 matching: IP addresses exactly, DNS names case-insensitively, a wildcard only
    as the whole left-most label."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for name in names:
        if address is not None:
            try:
                if ipaddress.ip_address(name) == address:
                    return True
            except ValueError:
                continue
            continue
        pattern = name.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            first, rest = host.split(".", 1)
            if first and rest == pattern[2:] and "." in rest:
                return True
    return False
