"""SCRAM-SHA-512 and SCRAM-*-PLUS driven by hand against scramp's server side.

The channel binding (``tls-server-end-point``, RFC 5929 section 4.1) is computed by mailwire
with ``cryptography`` and by scramp's server with asn1crypto from the certificate's PEM: the two
must agree for every signature hash, and a server holding another certificate (a man in the
middle) must refuse the client's proof.
"""

from __future__ import annotations

import datetime
import hashlib
import ssl
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from scramp import ScramException, ScramMechanism
from scramp.core import CBindData

from mailwire.auth import AuthContext, Credentials, registered
from mailwire.auth.channel_binding import tls_server_end_point
from mailwire.auth.mechanism import SaslFlow
from mailwire.auth.scram import Scram
from mailwire.errors import AuthenticationError

USER = "user"
PASSWORD = "pencil"
FAMILIES = ("SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512")


def certificate(key: Any, algorithm: hashes.HashAlgorithm | None) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, algorithm))


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def server_certificate(rsa_key: rsa.RSAPrivateKey) -> x509.Certificate:
    return certificate(rsa_key, hashes.SHA256())


@pytest.fixture(scope="module")
def other_certificate(rsa_key: rsa.RSAPrivateKey) -> x509.Certificate:
    return certificate(rsa_key, hashes.SHA256())


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def context(peer: x509.Certificate | None, offered: tuple[str, ...], *, tls: bool = True,
            ) -> AuthContext:
    return AuthContext("mail.example.test", 465, tls=tls,
                       peer_certificate=None if peer is None else der(peer), offered=offered)


def mechanism(name: str, ctx: AuthContext, password: str = PASSWORD) -> SaslFlow:
    kind = registered()[name]
    assert issubclass(kind, Scram)
    return kind(Credentials(USER, password), ctx).flow()


def scram_server(name: str, binding_certificate: x509.Certificate | None) -> Any:
    family = name.removesuffix("-PLUS")
    info = ScramMechanism(family).make_auth_info(PASSWORD, iteration_count=4096)
    channel_binding = (None if binding_certificate is None
                       else ("tls-server-end-point", pem(binding_certificate)))
    return ScramMechanism(name).make_server(lambda user: info, channel_binding=channel_binding)


def exchange(flow: SaslFlow, server: Any) -> None:
    """The whole exchange; raises what the server or the client raises."""
    client_first = next(flow)
    assert client_first is not None
    server.set_client_first(client_first.decode())
    client_final = flow.send(server.get_server_first().encode())
    assert client_final is not None
    server.set_client_final(client_final.decode())
    assert flow.send(server.get_server_final().encode()) == b""
    with pytest.raises(StopIteration):
        flow.send(None)


# -- tls-server-end-point ----------------------------------------------------------------------


@pytest.mark.parametrize(("signature", "expected"), [
    (hashes.SHA256(), "sha256"),
    (hashes.SHA384(), "sha384"),
    (hashes.SHA512(), "sha512"),
    (hashes.SHA224(), "sha224"),
])
def test_the_binding_hashes_with_the_signatures_hash(
    rsa_key: rsa.RSAPrivateKey, signature: hashes.HashAlgorithm, expected: str
) -> None:
    cert = der(certificate(rsa_key, signature))
    assert tls_server_end_point(cert) == hashlib.new(expected, cert).digest()
    assert tls_server_end_point(cert) == bytes(CBindData.from_der(cert))  # scramp's own


# DER of the OIDs sha256WithRSAEncryption, sha1WithRSAEncryption and md5WithRSAEncryption: the
# same length, so a certificate can be relabelled (cryptography no longer signs with SHA-1).
SHA256_WITH_RSA = bytes.fromhex("06092a864886f70d01010b")
OLD_SIGNATURES = {"sha1": bytes.fromhex("06092a864886f70d010105"),
                  "md5": bytes.fromhex("06092a864886f70d010104")}


@pytest.mark.parametrize("old", sorted(OLD_SIGNATURES))
def test_md5_and_sha1_signatures_bind_with_sha256(
    server_certificate: x509.Certificate, old: str
) -> None:
    """RFC 5929 section 4.1: MD5 and SHA-1 are replaced by SHA-256."""
    relabelled = der(server_certificate).replace(SHA256_WITH_RSA, OLD_SIGNATURES[old])
    algorithm = x509.load_der_x509_certificate(relabelled).signature_hash_algorithm
    assert algorithm is not None and algorithm.name == old
    assert tls_server_end_point(relabelled) == hashlib.sha256(relabelled).digest()
    assert tls_server_end_point(relabelled) == bytes(CBindData.from_der(relabelled))


def test_an_ecdsa_certificate_binds_with_its_hash() -> None:
    cert = certificate(ec.generate_private_key(ec.SECP384R1()), hashes.SHA384())
    assert tls_server_end_point(der(cert)) == hashlib.sha384(der(cert)).digest()


def test_no_binding_without_a_signature_hash() -> None:
    cert = certificate(ed25519.Ed25519PrivateKey.generate(), None)
    assert tls_server_end_point(der(cert)) is None
    assert tls_server_end_point(None) is None
    assert tls_server_end_point(b"not a certificate") is None


def test_the_binding_of_a_real_tls_certificate(server_certificate: x509.Certificate) -> None:
    """What ``ConnectionInfo.peer_certificate`` holds: DER, as ``ssl`` gives it."""
    as_ssl_gives_it = ssl.PEM_cert_to_DER_cert(pem(server_certificate))
    assert tls_server_end_point(as_ssl_gives_it) == hashlib.sha256(as_ssl_gives_it).digest()


# -- the GS2 header: what the client says about binding ---------------------------------------


@pytest.mark.parametrize(("name", "offered", "tls", "header"), [
    ("SCRAM-SHA-256-PLUS", ("SCRAM-SHA-256-PLUS",), True, b"p=tls-server-end-point,,"),
    ("SCRAM-SHA-256", ("SCRAM-SHA-256",), True, b"y,,"),  # could bind, the server cannot
    ("SCRAM-SHA-256", ("SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"), True, b"n,,"),  # not allowed
    ("SCRAM-SHA-256", ("SCRAM-SHA-256",), False, b"n,,"),  # no TLS: nothing to bind to
])
def test_the_gs2_header(server_certificate: x509.Certificate, name: str,
                        offered: tuple[str, ...], tls: bool, header: bytes) -> None:
    first = next(mechanism(name, context(server_certificate, offered, tls=tls)))
    assert first is not None
    assert first.startswith(header + b"n=user,r=")


# -- whole exchanges ---------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_plus_against_a_server_with_the_same_certificate(
    server_certificate: x509.Certificate, family: str
) -> None:
    name = f"{family}-PLUS"
    exchange(mechanism(name, context(server_certificate, (name,))),
             scram_server(name, server_certificate))


@pytest.mark.parametrize("family", FAMILIES)
def test_plus_detects_a_man_in_the_middle(
    server_certificate: x509.Certificate, other_certificate: x509.Certificate, family: str
) -> None:
    """The client bound to the certificate it saw; the real server holds another one."""
    name = f"{family}-PLUS"
    with pytest.raises(ScramException, match="channel binding"):
        exchange(mechanism(name, context(server_certificate, (name,))),
                 scram_server(name, other_certificate))


def test_a_stripped_plus_offer_is_detected(server_certificate: x509.Certificate) -> None:
    """A server that supports binding, whose PLUS names an attacker removed from EHLO: the
    client's ``y`` makes it refuse (RFC 5802 section 6)."""
    flow = mechanism("SCRAM-SHA-256", context(server_certificate, ("SCRAM-SHA-256",)))
    server = scram_server("SCRAM-SHA-256", server_certificate)
    with pytest.raises(ScramException, match="channel binding"):
        exchange(flow, server)


def test_plain_scram_over_tls_works_with_a_server_without_binding(
    server_certificate: x509.Certificate
) -> None:
    exchange(mechanism("SCRAM-SHA-256", context(server_certificate, ("SCRAM-SHA-256",))),
             scram_server("SCRAM-SHA-256", None))


def test_scram_sha_512(server_certificate: x509.Certificate) -> None:
    exchange(mechanism("SCRAM-SHA-512", context(None, ("SCRAM-SHA-512",), tls=False)),
             scram_server("SCRAM-SHA-512", None))


def test_scram_sha_512_wrong_password_is_refused() -> None:
    with pytest.raises(ScramException):
        exchange(mechanism("SCRAM-SHA-512", context(None, ("SCRAM-SHA-512",), tls=False),
                           password="wrong"), scram_server("SCRAM-SHA-512", None))


def test_plus_without_a_certificate_to_bind_to_fails_before_sending() -> None:
    flow = mechanism("SCRAM-SHA-256-PLUS", context(None, ("SCRAM-SHA-256-PLUS",)))
    with pytest.raises(AuthenticationError, match="certificate to bind to"):
        next(flow)


def test_the_final_message_is_secret(server_certificate: x509.Certificate) -> None:
    """The client proof goes out as ``SecretBytes``: redacted wherever it is shown."""
    flow = mechanism("SCRAM-SHA-256", context(None, ("SCRAM-SHA-256",), tls=False))
    server = scram_server("SCRAM-SHA-256", None)
    first = next(flow)
    assert first is not None
    server.set_client_first(first.decode())
    final = flow.send(server.get_server_first().encode())
    assert final is not None and final.startswith(b"c=biws,r=")
    assert b"p=" not in repr(final).encode() and "redacted" in repr(final)


def test_importing_mailwire_leaves_scramp_until_scram_is_used() -> None:
    """scramp costs every program that imports mailwire about 0.1 s; only SCRAM needs it."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys
        import mailwire, mailwire.auth, mailwire.cli
        assert "scramp" not in sys.modules, "imported with mailwire"
        from mailwire.auth import AuthContext, Credentials, registered
        kind = registered()["SCRAM-SHA-256"]
        first = next(kind(Credentials("user", "pencil"), AuthContext()).flow())
        assert first.startswith(b"n,,n=user,r="), first
    """)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
