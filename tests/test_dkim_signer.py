"""``DkimSigner``: what it accepts, what it refuses (clearly, before any connection), and what it
never shows.

Every value a signer is given ends up in the DKIM-Signature field: a selector, domain, identity or
header name holding ``;``, ``=``, white space or a line break could add tags or header lines, so
each is checked against its grammar when the signer is made.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mailwire import DkimSigner, SmtpUsageError
from mailwire.message import prepare
from mailwire.warning_categories import InsecureSettingWarning
from tests.support.dkim_keys import DOMAIN, SELECTOR, key_pair, signature_tags, verifies

RSA = key_pair("rsa")
MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n"


def signer(**options: object) -> DkimSigner:
    settings: dict[str, object] = {"domain": DOMAIN, "selector": SELECTOR,
                                   "private_key": RSA.pem}
    settings.update(options)
    return DkimSigner(**settings)  # type: ignore[arg-type]


def signed(message: bytes, dkim_signer: DkimSigner) -> bytes:
    return b"".join(prepare(message, dkim_signer=dkim_signer).chunks)


@pytest.mark.parametrize("selector", ["", "a;b", "a b", "a\r\nX-Injected: 1", "a=b", "-lead",
                                      "trail-", "a..b", "é", "x" * 64, None, 5])
def test_a_selector_that_is_not_dns_labels_is_refused(selector: object) -> None:
    with pytest.raises(SmtpUsageError, match="selector"):
        signer(selector=selector)


@pytest.mark.parametrize("domain", ["", "localhost", "example.com;", "exa mple.com",
                                    "example.com\r\n", "a..com", "example.com.", "-x.com",
                                    b"example.com"])
def test_a_domain_that_is_not_a_domain_name_is_refused(domain: object) -> None:
    with pytest.raises(SmtpUsageError, match="domain"):
        signer(domain=domain)


def test_an_internationalized_domain_is_signed_as_its_a_labels() -> None:
    assert signer(domain="bücher.example").domain == "xn--bcher-kva.example"


@pytest.mark.parametrize(("identity", "problem"), [
    ("bob@other.example", "must be at example.com"),
    ("bob@notexample.com", "must be at example.com"),
    ("bob", "not \\[local-part\\]@domain"),
    ("b;ob@example.com", "local part"),
    ("b ob@example.com", "local part"),
    ("b=ob@example.com", "local part"),
    ("bob@example.com\r\n", "domain"),
])
def test_an_identity_outside_the_domain_or_with_tag_characters_is_refused(
    identity: str, problem: str
) -> None:
    with pytest.raises(SmtpUsageError, match=problem):
        signer(identity=identity)


@pytest.mark.parametrize(("headers", "problem"), [
    (["To", "Subject"], "must include From"),
    (["From", "Bcc"], "bcc must not be signed"),
    (["From", "Received"], "received must not be signed"),
    (["From", "DKIM-Signature"], "dkim-signature must not be signed"),
    (["From", "Sub ject"], "not a header field name"),
    (["From", "X:Y"], "not a header field name"),
    (["From", "X\r\nY"], "not a header field name"),
    ("From", "not one string"),
])
def test_a_header_list_dkim_cannot_use_is_refused(headers: object, problem: str) -> None:
    with pytest.raises(SmtpUsageError, match=problem):
        signer(headers=headers)


@pytest.mark.parametrize("options", [{"header_canonicalization": "nowsp"},
                                     {"body_canonicalization": "relaxed/simple"},
                                     {"expires_after": 0}, {"expires_after": -5},
                                     {"expires_after": float("inf")}, {"expires_after": True}])
def test_other_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(SmtpUsageError):
        signer(**options)


def _pem(key: object, kind: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
         encryption: serialization.KeySerializationEncryption | None = None) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, kind,  # type: ignore[attr-defined]
                             encryption or serialization.NoEncryption())


@pytest.mark.parametrize(("key", "problem"), [
    (b"not a key at all", "neither a PEM private key nor a base64 Ed25519 key"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a PEM private key"),
    (rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
     "holds no private key"),
    (_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024),
          encryption=serialization.BestAvailableEncryption(b"pw")), "is encrypted"),
    (_pem(ec.generate_private_key(ec.SECP256R1())), "ECPrivateKey; DKIM signs with RSA"),
    (subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                     "rsa_keygen_bits:768"], capture_output=True, check=True).stdout,
     "768-bit RSA key; verifiers refuse"),
], ids=["garbage", "bad-pem", "public-key", "encrypted", "ec", "rsa-768"])
def test_a_key_that_cannot_sign_for_dkim_is_refused_when_the_signer_is_made(
    key: bytes, problem: str
) -> None:
    with pytest.raises(SmtpUsageError, match=problem) as caught:
        signer(private_key=key)
    assert "PRIVATE" not in str(caught.value) and "MII" not in str(caught.value)


def test_a_str_key_is_refused_since_it_could_be_a_path_or_the_pem_text() -> None:
    with pytest.raises(SmtpUsageError, match=r"pathlib\.Path"):
        signer(private_key=RSA.pem.decode())


def test_a_missing_key_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SmtpUsageError, match=r"cannot read the DKIM key file .*missing\.pem"):
        signer(private_key=tmp_path / "missing.pem")


def test_keys_in_pkcs1_pkcs8_crlf_files_and_bare_ed25519_seeds_all_sign(tmp_path: Path) -> None:
    private = serialization.load_pem_private_key(RSA.pem, None)
    pkcs1 = _pem(private, serialization.PrivateFormat.TraditionalOpenSSL)
    path = tmp_path / "key.pem"
    path.write_bytes(pkcs1.replace(b"\n", b"\r\n"))
    path.chmod(0o600)
    for key in (pkcs1, RSA.pem, path):
        assert verifies(signed(MESSAGE, signer(private_key=key)), RSA)
    ed = key_pair("ed25519")
    seed = serialization.load_pem_private_key(ed.pem, None).private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    import base64

    for key in (ed.pem, base64.b64encode(seed) + b"\n"):
        made = signer(private_key=key)
        assert made.algorithm == "ed25519-sha256"
        assert verifies(signed(MESSAGE, made), ed)


def test_a_key_file_other_users_may_read_warns(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(RSA.pem)
    path.chmod(0o644)
    with pytest.warns(InsecureSettingWarning, match=r"chmod 600 .*key\.pem"):
        signer(private_key=path)
    path.chmod(0o640)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureSettingWarning)
        signer(private_key=path)


def test_the_key_never_shows_in_a_repr() -> None:
    made = signer()
    shown = repr(made) + repr(made._key) + repr(made._key.dkimpy_key)
    assert shown.startswith("<DkimSigner d=example.com s=mail2024 rsa-sha256 2048 bits>")
    numbers = made._key.dkimpy_key
    assert str(numbers["privateExponent"])[:40] not in shown
    assert "redacted" in repr(numbers)


def test_dns_record_is_the_record_to_publish() -> None:
    assert signer().dns_record().encode() == RSA.record


def test_the_signature_carries_the_options_it_was_given() -> None:
    made = signer(identity="news@lists.example.com", expires_after=3600.5,
                  headers=["From", "Subject", "From", "X-Absent"],
                  header_canonicalization="simple", body_canonicalization="simple")
    message = signed(MESSAGE, made)
    tags = signature_tags(message)
    assert tags["i"] == "news@lists.example.com"
    assert int(tags["x"]) - int(tags["t"]) == 3601
    assert tags["h"] == "from:subject:from:x-absent"
    assert tags["c"] == "simple/simple" and tags["a"] == "rsa-sha256"
    assert verifies(message, RSA)
    # X-Absent was signed as absent: adding one breaks the signature.
    header, _, body = message.partition(b"\r\n\r\n")
    assert not verifies(header + b"\r\nX-Absent: 1\r\n\r\n" + body, RSA)


def test_by_default_recommended_fields_are_signed_and_from_twice() -> None:
    message = (b"From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n"
               b"X-Mailer: m\r\nReceived: by relay\r\n\r\nbody\r\n")
    assert signature_tags(signed(message, signer()))["h"] == "from:to:subject:from"


def test_without_dkimpy_making_a_signer_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dkim", None)
    with pytest.raises(SmtpUsageError, match=r"pip install 'mailwire\[dkim\]'"):
        signer()


def test_without_pynacl_an_ed25519_key_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nacl", None)
    with pytest.raises(SmtpUsageError, match=r"Ed25519 .*pip install 'mailwire\[dkim\]'"):
        signer(private_key=key_pair("ed25519").pem)
    assert signer().algorithm == "rsa-sha256"  # RSA needs no PyNaCl


def test_import_mailwire_does_not_import_dkimpy() -> None:
    code = ("import sys, mailwire; from mailwire import DkimSigner; "
            "print(sorted(m for m in ('dkim', 'nacl', 'dns') if m in sys.modules))")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env=environment).stdout
    assert output.strip() == "[]"


def test_a_signer_cannot_be_changed_after_its_checks() -> None:
    made = signer()
    with pytest.raises(AttributeError):
        made.selector = "a;b=c"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        made.domain = "evil.example"  # type: ignore[misc]
