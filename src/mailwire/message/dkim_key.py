"""A DKIM private key: read from PEM bytes or a file, checked, and made ready for dkimpy.

The key is parsed by ``cryptography`` (PKCS#1 or PKCS#8 PEM, any line ends), so that a wrong key
is a clear ``SmtpUsageError`` when the signer is made, before any connection: not a key, an
encrypted key, a public key, a type DKIM has no algorithm for, an RSA key shorter than 1024 bits
(RFC 8301: verifiers refuse them). An Ed25519 key may also be the bare base64 seed that dkimpy's
``dknewkey`` writes. A key file that other users of the machine may read gives an
``InsecureSettingWarning``. No error or repr shows any part of the key.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass, field
from typing import Any

from mailwire.auth.optional import missing_extra
from mailwire.errors import SmtpUsageError
from mailwire.warning_categories import InsecureSettingWarning, warn

MIN_RSA_BITS = 1024
MAX_KEY_FILE = 64 * 1024
"""A PEM key is a few KiB; this bounds what reading a wrong path costs."""
_ED25519_SEED = 32


class _RedactedKey(dict[str, int]):
    """dkimpy's RSA key (a dict of its numbers) that never shows them in a repr, such as the
    local variables an error reporter records."""

    def __repr__(self) -> str:
        return "<redacted RSA private key>"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A checked key in the form dkimpy's ``gen_header`` signs with."""

    algorithm: bytes
    """``rsa-sha256`` or ``ed25519-sha256`` (the ``a=`` tag)."""
    bits: int
    public_key: bytes = field(repr=False)
    """The public key as published in DNS (``p=``): DER SubjectPublicKeyInfo for RSA, the raw
    32 bytes for Ed25519."""
    dkimpy_key: Any = field(repr=False)

    @property
    def dns_type(self) -> str:
        return "ed25519" if self.algorithm == b"ed25519-sha256" else "rsa"


def read_key(private_key: bytes | bytearray | os.PathLike[str]) -> SigningKey:
    """The key in ``private_key`` (PEM bytes, or the path of a PEM file)."""
    if isinstance(private_key, str):
        raise SmtpUsageError("private_key is a str: pass a pathlib.Path for a key file, or the "
                             "PEM text as bytes (text.encode())")
    if isinstance(private_key, os.PathLike):
        path = os.fspath(private_key)
        data, others_may_read = _read_file(path)
        key = parse_key(data, f"the DKIM key file {path}")
        if others_may_read:
            warn(f"the DKIM private key {path} may be read by every user of this machine: run "
                 f"chmod 600 {path}", InsecureSettingWarning)
        return key
    if isinstance(private_key, bytes | bytearray):
        return parse_key(bytes(private_key), "the DKIM private key")
    raise SmtpUsageError(f"private_key must be PEM bytes or a pathlib.Path, not "
                         f"{type(private_key).__name__}")


def parse_key(data: bytes, what: str) -> SigningKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if b"-----BEGIN" not in data:
        return _ed25519(_bare_seed(data, what))
    if b"PRIVATE KEY-----" not in data:
        raise SmtpUsageError(f"{what} holds no private key (a public key or a certificate?)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SmtpUsageError(f"{what} is encrypted: give it unencrypted (for example "
                             "openssl pkey -in KEY -out PLAIN.pem), readable by you only") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SmtpUsageError(f"{what} is not a PEM private key that can be read") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _ed25519(key.private_bytes(serialization.Encoding.Raw,
                                          serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption()))
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SmtpUsageError(f"{what} is an {type(key).__name__}; DKIM signs with RSA or "
                             "Ed25519 keys")
    if key.key_size < MIN_RSA_BITS:
        raise SmtpUsageError(f"{what} is a {key.key_size}-bit RSA key; verifiers refuse keys "
                             f"shorter than {MIN_RSA_BITS} bits (RFC 8301): use 2048 bits")
    from dkim.crypto import parse_pem_private_key

    traditional = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return SigningKey(b"rsa-sha256", key.key_size, public,
                      _RedactedKey(parse_pem_private_key(traditional)))


def _ed25519(seed: bytes) -> SigningKey:
    problem = missing_extra("dkim", "nacl")
    if problem is not None:
        raise SmtpUsageError(f"Ed25519 DKIM signing {problem}")
    import nacl.signing

    key = nacl.signing.SigningKey(seed)
    return SigningKey(b"ed25519-sha256", 256, bytes(key.verify_key), key)


def _bare_seed(data: bytes, what: str) -> bytes:
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        seed = b""
    if len(seed) != _ED25519_SEED:
        raise SmtpUsageError(f"{what} is neither a PEM private key nor a base64 Ed25519 key")
    return seed


def _read_file(path: str) -> tuple[bytes, bool]:
    """The file's bytes, and whether users other than its owner and group may read it."""
    try:
        with open(path, "rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise SmtpUsageError(f"the DKIM key file {path} is not a regular file")
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as error:
        raise SmtpUsageError(f"cannot read the DKIM key file {path}: "
                             f"{error.strerror or error}") from None
    if len(data) > MAX_KEY_FILE:
        raise SmtpUsageError(f"the DKIM key file {path} is larger than "
                             f"{MAX_KEY_FILE // 1024} KiB: not a key")
    return data, hasattr(os, "geteuid") and bool(status.st_mode & stat.S_IROTH)
