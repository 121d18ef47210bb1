"""``DkimSigner``: the DKIM signature (RFC 6376) of each message, made as it is sent.

What the signer is given is checked when it is made, so a wrong domain, selector, identity,
header list or key is a ``SmtpUsageError`` before any connection: the values that go into the
``DKIM-Signature`` field are DNS names and tag values, and nothing that could end a tag, a field
or a line gets in. Signing needs the ``dkim`` extra (dkimpy): without it, making a signer says
what to install; ``import mailwire`` never imports dkimpy.

The body hash is computed by ``mailwire.message.dkim_body`` while the body streams past (so a
large file is never held in memory); dkimpy selects, canonicalizes and signs the header fields
and writes the field (``DomainSigner.gen_header``, which its own ``sign`` uses).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterable

from mailwire.auth.optional import missing_extra
from mailwire.errors import MessageError, SmtpUsageError
from mailwire.message.dkim_body import CANONICALIZATIONS, BodyHasher
from mailwire.message.dkim_key import SigningKey, read_key

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/?^_`{|}~.-]*")
_MAX_DOMAIN = 253
NEVER_SIGNED = frozenset({"bcc", "resent-bcc", "dkim-signature", "received", "return-path",
                          "comments", "keywords"})
"""Bcc is never sent, and servers add Received and Return-Path on the way: signing a name
also signs its absence, so the first relay would break the signature."""
_PLACEHOLDER = b"0" * 60  # dkimpy's: puts b= on a line of its own before the real value


class DkimSigner:
    """Signs every message a client sends with DKIM, once mailwire's own changes are made (Bcc
    removed, line ends normalized, Date and Message-ID added), so the signature verifies on
    what the server receives. Set it as ``client.dkim_signer``; needs ``mailwire[dkim]``.

    domain: the signing domain (``d=``), whose DNS holds the public key at
        ``<selector>._domainkey.<domain>``.
    selector: the key's selector (``s=``).
    private_key: the private key as PEM bytes, or a ``pathlib.Path`` to a PEM file (RSA of
        1024 bits or more, 2048 advised; or Ed25519). Read once, here.
    headers: the header field names to sign (``h=``), in order; a name may repeat, and a name
        the message lacks signs its absence. Default: RFC 6376's recommended fields that the
        message has, with From signed twice (no second From can be added).
    header_canonicalization, body_canonicalization: ``"relaxed"`` (default) or ``"simple"``.
    identity: the agent or user the domain vouches for (``i=``), ``[local-part]@domain`` at the
        domain or a subdomain of it (default: none, which means ``@domain``).
    expires_after: seconds after signing at which verifiers must stop accepting the signature
        (``x=``); default None, no expiry.
    """

    __slots__ = ("_body_canonicalization", "_domain", "_expires_after",
                 "_header_canonicalization", "_headers", "_identity", "_key", "_selector")

    def __init__(
        self,
        domain: str,
        selector: str,
        private_key: bytes | os.PathLike[str],
        *,
        headers: Iterable[str] | None = None,
        header_canonicalization: str = "relaxed",
        body_canonicalization: str = "relaxed",
        identity: str | None = None,
        expires_after: float | None = None,
    ) -> None:
        problem = missing_extra("dkim", "dkim")
        if problem is not None:
            raise SmtpUsageError(f"DKIM signing {problem}")
        self._domain = _domain(domain, "domain")
        self._selector = _selector(selector)
        self._headers = _headers(headers)
        self._header_canonicalization = _canonicalization(header_canonicalization, "header")
        self._body_canonicalization = _canonicalization(body_canonicalization, "body")
        self._identity = _identity(identity, self._domain)
        self._expires_after = _expiry(expires_after)
        self._key: SigningKey = read_key(private_key)

    # Read-only: each was checked once, and a signer may be shared by threads and clients.

    @property
    def domain(self) -> str:
        """The signing domain (``d=``), in A-labels."""
        return self._domain

    @property
    def selector(self) -> str:
        return self._selector

    @property
    def headers(self) -> tuple[str, ...] | None:
        """The field names signed (lower case), or None for the default choice."""
        return self._headers

    @property
    def header_canonicalization(self) -> str:
        return self._header_canonicalization

    @property
    def body_canonicalization(self) -> str:
        return self._body_canonicalization

    @property
    def identity(self) -> str | None:
        return self._identity

    @property
    def expires_after(self) -> float | None:
        return self._expires_after

    @property
    def algorithm(self) -> str:
        """The signature algorithm (``a=``): ``rsa-sha256`` or ``ed25519-sha256``."""
        return self._key.algorithm.decode("ascii")

    def dns_record(self) -> str:
        """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
        import base64

        public = base64.b64encode(self._key.public_key).decode("ascii")
        return f"v=DKIM1; k={self._key.dns_type}; p={public}"

    def body_hasher(self) -> BodyHasher:
        return BodyHasher(self.body_canonicalization)

    def signature_field(self, header: bytes, body_hash: bytes) -> bytes:
        """The ``DKIM-Signature`` field (CRLF-terminated lines) for the header section
        ``header`` (CRLF line breaks, as sent) of a message whose body hashed to ``body_hash``."""
        import base64

        import dkim
        from dkim.canonicalization import CanonicalizationPolicy
        from dkim.crypto import HASH_ALGORITHMS

        try:
            signer = dkim.DKIM(header, signature_algorithm=self._key.algorithm)
        except dkim.DKIMException as error:
            raise MessageError(f"the header section cannot be DKIM-signed: {error}") from None
        names = (tuple(name.encode("ascii") for name in self.headers) if self.headers
                 else tuple(name.lower() for name in signer.default_sign_headers()))
        if b"from" not in names:
            raise MessageError("the message has no From field, which DKIM must sign")
        now = int(time.time())
        canonicalization = f"{self.header_canonicalization}/{self.body_canonicalization}"
        tags: list[tuple[bytes, bytes] | None] = [
            (b"v", b"1"),
            (b"a", self._key.algorithm),
            (b"c", canonicalization.encode("ascii")),
            (b"d", self.domain.encode("ascii")),
            (b"i", self.identity.encode("ascii")) if self.identity else None,
            (b"s", self.selector.encode("ascii")),
            (b"t", str(now).encode("ascii")),
            ((b"x", str(now + math.ceil(self.expires_after)).encode("ascii"))
             if self.expires_after is not None else None),
            (b"h", b" : ".join(names)),
            (b"bh", base64.b64encode(body_hash)),
            (b"b", _PLACEHOLDER),
        ]
        signer.hasher = HASH_ALGORITHMS[self._key.algorithm]
        policy = CanonicalizationPolicy.from_c_value(canonicalization.encode("ascii"))
        value = signer.gen_header([tag for tag in tags if tag is not None], names, policy,
                                  b"DKIM-Signature", self._key.dkimpy_key)
        return b"DKIM-Signature: " + bytes(value)

    def __repr__(self) -> str:
        return (f"<DkimSigner d={self.domain} s={self.selector} {self.algorithm} "
                f"{self._key.bits} bits>")


def check_domain(value: object) -> str:
    """``value`` as a DKIM signing domain (A-labels), or ValueError saying what is wrong."""
    try:
        return _domain(value, "domain")
    except SmtpUsageError as error:
        raise ValueError(str(error)) from None


def check_selector(value: object) -> str:
    """``value`` as a DKIM selector, or ValueError saying what is wrong."""
    try:
        return _selector(value)
    except SmtpUsageError as error:
        raise ValueError(str(error)) from None


def _domain(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise SmtpUsageError(f"DKIM {what} must be a str, not {type(value).__name__}")
    name = value
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise SmtpUsageError(f"DKIM {what} {value!r} is not a domain name") from None
    labels = name.split(".")
    if (len(name) > _MAX_DOMAIN or len(labels) < 2
            or not all(_LABEL.fullmatch(label) for label in labels)):
        raise SmtpUsageError(f"DKIM {what} {value!r} is not a domain name (letters, digits "
                             "and hyphens, in two or more labels separated by dots)")
    return name


def _selector(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_DOMAIN or not all(
            _LABEL.fullmatch(label) for label in value.split(".")):
        raise SmtpUsageError(f"DKIM selector {value!r} is not a selector (DNS labels of "
                             "letters, digits and hyphens, separated by dots)")
    return value


def _headers(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        raise SmtpUsageError("headers must be a list of field names, not one string")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise SmtpUsageError(f"DKIM headers: {name!r} is not a header field name")
    lowered = tuple(name.lower() for name in names)
    if "from" not in lowered:
        raise SmtpUsageError("DKIM headers must include From (RFC 6376 5.4)")
    refused = sorted(NEVER_SIGNED.intersection(lowered))
    if refused:
        raise SmtpUsageError(f"DKIM headers: {', '.join(refused)} must not be signed (Bcc is "
                             "never sent; the others are added or changed on the way, which "
                             "would break the signature)")
    return lowered


def _canonicalization(value: object, what: str) -> str:
    if not isinstance(value, str) or value.lower() not in CANONICALIZATIONS:
        raise SmtpUsageError(f"DKIM {what}_canonicalization must be 'relaxed' or 'simple', "
                             f"not {value!r}")
    return value.lower()


def _identity(value: object, domain: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or "@" not in value:
        raise SmtpUsageError(f"DKIM identity {value!r} is not [local-part]@domain")
    local, _, at_domain = value.rpartition("@")
    if not _LOCAL_PART.fullmatch(local):
        raise SmtpUsageError(f"DKIM identity {value!r}: the local part may hold letters, "
                             "digits and !#$%&'*+/?^_`{|}~.- only")
    name = _domain(at_domain, "identity's domain")
    if name.lower() != domain.lower() and not name.lower().endswith("." + domain.lower()):
        raise SmtpUsageError(f"DKIM identity {value!r} must be at {domain} or a subdomain of "
                             "it (RFC 6376 3.5, i=)")
    return f"{local}@{name}"


def _expiry(value: object) -> float | None:
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value <= 0):
        raise SmtpUsageError(f"expires_after must be a positive number of seconds, not "
                             f"{value!r}")
    return float(value)
