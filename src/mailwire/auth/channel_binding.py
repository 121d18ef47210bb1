"""Channel binding data ``tls-server-end-point`` (RFC 5929 section 4), for SCRAM-*-PLUS.

The binding is the hash of the server's certificate as the client received it. The hash
function is the one the certificate's signature uses, except that MD5 and SHA-1 become SHA-256;
a certificate whose signature has no separate hash (Ed25519, Ed448) has no such binding.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes

NAME = "tls-server-end-point"


def tls_server_end_point(certificate: bytes | None) -> bytes | None:
    """The binding for a DER certificate, or None when there is none to compute."""
    if not certificate:
        return None
    try:
        algorithm = x509.load_der_x509_certificate(certificate).signature_hash_algorithm
    except (ValueError, UnsupportedAlgorithm):
        return None
    if algorithm is None:
        return None
    if algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate)
    return digest.finalize()
