"""DKIM test keys and verification with dkimpy against the public key, as a receiver would.

The published record is built here from the key pair ``cryptography`` generated, not asked of
mailwire, so a test never checks mailwire against itself. dkimpy looks the record up through
the ``dnsfunc`` it is given, which answers for ``<selector>._domainkey.<domain>`` only.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

DOMAIN = "example.com"
SELECTOR = "mail2024"


@dataclass(frozen=True)
class KeyPair:
    kind: str
    pem: bytes
    record: bytes
    """The TXT record a receiver finds at ``SELECTOR._domainkey.DOMAIN``."""


@cache
def key_pair(kind: str = "rsa", bits: int = 2048) -> KeyPair:
    """A fresh key (one per kind and size per test session)."""
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if kind == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    k = "rsa" if kind == "rsa" else "ed25519"
    record = f"v=DKIM1; k={k}; p={base64.b64encode(public).decode()}".encode()
    return KeyPair(kind, pem, record)


def verifies(message: bytes, key: KeyPair, *, domain: str = DOMAIN,
             selector: str = SELECTOR) -> bool:
    """Whether the first DKIM-Signature of ``message`` verifies with ``key``'s record."""
    wanted = f"{selector}._domainkey.{domain}.".encode()

    def dns(name: bytes, timeout: float = 5) -> bytes | None:
        return key.record if name == wanted else None

    return bool(dkim.verify(message, dnsfunc=dns))


def signature_tags(message: bytes) -> dict[str, str]:
    """The tags of the first DKIM-Signature field, white space removed."""
    verifier = dkim.DKIM(message)
    fields = [value for name, value in verifier.headers if name.lower() == b"dkim-signature"]
    assert fields, "no DKIM-Signature field"
    parsed = dkim.util.parse_tag_value(fields[0])
    return {name.decode(): b"".join(value.split()).decode() for name, value in parsed.items()}
