"""Server side of the SASL mechanisms the development server offers.

How aiosmtpd 1.4 takes mechanisms: when an ``SMTP`` protocol object is built it
collects every member whose name starts with ``auth_`` from itself and from its
handler; a member's mechanism name is its ``@auth_mechanism("NAME")`` or else its
name without ``auth_`` and with ``__`` turned into ``-``.  A handler's member is
called as ``method(smtp, args)`` where ``args`` is ``["MECH", initial_response?]``,
and returns an ``AuthResult``: on success the ``SMTP`` object sends ``235`` and stores
``auth_data`` as ``session.auth_data``; on failure it sends nothing when
``handled=True`` (the method already answered), else ``message`` or
``535 5.7.8 Authentication credentials invalid``.  ``smtp.challenge_auth`` sends a
``334`` line (base64-encoding the challenge) and returns the decoded reply, or
``MISSING`` after answering ``501`` itself when the client sent ``*`` or bad base64.

PLAIN and LOGIN are aiosmtpd's own ``auth_PLAIN``/``auth_LOGIN``: they hand a
``LoginPassword`` to the ``authenticator`` callable given to ``SMTP``, which here is
``SaslMechanisms.authenticate_password``.  CRAM-MD5, SCRAM-SHA-1/256/512 and their -PLUS
variants (the exchange itself done by ``scramp``), XOAUTH2, OAUTHBEARER and EXTERNAL are
``auth_`` methods of ``SaslMechanisms``, which the server's handler inherits.  A class
mixing this in must not give any other attribute a name starting with ``auth_``.

Which of them are offered is chosen by excluding the others
(``auth_exclude_mechanism``); aiosmtpd lists the rest in EHLO sorted by name, so the
server reorders that line itself (see ``server.py``) and leaves out what cannot work on
the connection (``offered_on``): the -PLUS variants without TLS or without the server's
certificate to bind to (``channel_binding_certificate``), EXTERNAL without TLS.

- SCRAM-*-PLUS binds to ``tls-server-end-point``, computed by scramp from the server's own
  certificate; plain SCRAM refuses a client that sent ``y`` (it could bind but saw no PLUS)
  on a connection where PLUS is offered: the RFC 5802 downgrade check.
- OAUTHBEARER (RFC 7628) takes ``n,a=<user>,`` and ``auth=Bearer <token>``; a wrong token
  gets a 334 JSON error (``OAUTHBEARER_ERROR``), and only the client's ``\x01`` answer to it
  gets the final ``535`` (anything else: ``501``).
- EXTERNAL takes the identity from the client certificate the TLS layer verified (its email
  address, else its common name); the authorization identity sent must be empty or that
  identity.  The server asks for client certificates only when ``client_ca_file`` is given to
  ``DevServer``.
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import secrets
import time
from base64 import b64decode
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, auth_mechanism
from scramp import ScramException, ScramMechanism

ALL_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512",
                  "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS", "XOAUTH2",
                  "OAUTHBEARER")
"""Offered by default (each where it can work: ``offered_on``)."""
KNOWN_MECHANISMS = (*ALL_MECHANISMS, "EXTERNAL")
"""Everything the server implements; EXTERNAL also needs ``client_ca_file``."""
SCRAM_ITERATIONS = 4096
XOAUTH2_ERROR = {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
OAUTHBEARER_ERROR = {"status": "invalid_token", "scope": "https://mail.example.test/",
                     "openid-configuration": "https://auth.example.test/.well-known/openid"}
CHANNEL_BINDING = "tls-server-end-point"
AUTH_RESPONSE_LIMIT = 12288 + 2
"""Octets of a SASL response line, CRLF included, that a server must take (RFC 4954 section 4);
aiosmtpd reads every line with its 1001-octet command limit."""


def _drop_login_data_deprecation(record: logging.LogRecord) -> bool:
    """aiosmtpd's own smtp_AUTH sets its deprecated ``session.login_data`` on every
    success, logging a warning that Python's last-resort handler prints to stderr."""
    return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_drop_login_data_deprecation)


@dataclass(frozen=True)
class AuthenticatedUser:
    """What a successful AUTH leaves in ``session.auth_data``."""

    mechanism: str
    user: str


def validate_mechanisms(names: Sequence[str]) -> tuple[str, ...]:
    """Upper-case ``names``, keep their order, and refuse unknown or repeated ones."""
    mechanisms = tuple(name.upper() for name in names)
    unknown = [name for name in mechanisms if name not in KNOWN_MECHANISMS]
    if unknown:
        raise ValueError(f"unknown SASL mechanisms {unknown}; known: {KNOWN_MECHANISMS}")
    if len(set(mechanisms)) != len(mechanisms):
        raise ValueError(f"SASL mechanisms repeated in {mechanisms}")
    return mechanisms


@contextlib.contextmanager
def _long_responses(smtp: SMTP) -> Iterator[None]:
    """Let the client's SASL responses be as long as RFC 4954 allows, during one exchange."""
    reader: Any = smtp._reader
    saved = reader._limit
    reader._limit = max(saved, AUTH_RESPONSE_LIMIT)
    try:
        yield
    finally:
        reader._limit = saved


Method = Callable[[Any, SMTP, list[str]], Awaitable[AuthResult]]


def _taking_long_responses(method: Method) -> Method:
    @functools.wraps(method)
    async def exchange(self: Any, smtp: SMTP, args: list[str]) -> AuthResult:
        with _long_responses(smtp):
            return await method(self, smtp, args)

    return exchange


def _matches(expected: str | None, given: bytes) -> bool:
    return expected is not None and hmac.compare_digest(expected.encode(), given)


def _failed_without_answer() -> AuthResult:
    return AuthResult(success=False, handled=False)


async def _initial_response(smtp: SMTP, args: list[str]) -> bytes | None:
    """The client's first SASL message: sent with AUTH, or asked for with an empty 334.

    ``None`` means the exchange is over and the client has been answered.
    """
    if len(args) == 1:
        reply = await smtp.challenge_auth(b"")
        return reply if isinstance(reply, bytes) else None
    if args[1] == "=":
        return b""
    try:
        return b64decode(args[1], validate=True)
    except binascii.Error:
        await smtp.push("501 5.5.2 Can't decode base64")
        return None


def _parse_xoauth2(response: bytes) -> tuple[str, bytes] | None:
    fields = dict(part.split(b"=", 1) for part in response.split(b"\x01") if b"=" in part)
    user, authorization = fields.get(b"user"), fields.get(b"auth", b"")
    return _bearer(user, authorization)


def _parse_oauthbearer(response: bytes) -> tuple[str, bytes] | None:
    """``n,a=<user>,\x01key=value\x01...\x01\x01`` (RFC 7628 section 3.1)."""
    header, separator, rest = response.partition(b"\x01")
    if not separator or not rest.endswith(b"\x01\x01"):
        return None
    flag, _, remainder = header.partition(b",")
    authzid, comma, trailing = remainder.partition(b",")
    if flag != b"n" or not comma or trailing or not authzid.startswith(b"a="):
        return None
    user = authzid[2:].replace(b"=2C", b",").replace(b"=3D", b"=")
    fields = dict(part.split(b"=", 1) for part in rest[:-2].split(b"\x01") if b"=" in part)
    return _bearer(user, fields.get(b"auth", b""))


def _bearer(user: bytes | None, authorization: bytes) -> tuple[str, bytes] | None:
    scheme, _, token = authorization.partition(b" ")
    if user is None or scheme.lower() != b"bearer" or not token:
        return None
    try:
        return user.decode(), token
    except UnicodeDecodeError:
        return None


def _tls_object(smtp: SMTP) -> Any:
    transport = smtp.transport
    return transport.get_extra_info("ssl_object") if transport is not None else None


def certificate_identity(certificate: Mapping[str, Any] | None) -> str | None:
    """The identity a verified client certificate (``getpeercert()``) gives: its first email
    address, else its common name."""
    if not certificate:
        return None
    for kind, value in certificate.get("subjectAltName", ()):
        if kind == "email":
            return str(value)
    for entry in certificate.get("subject", ()):
        for key, value in entry:
            if key == "commonName":
                return str(value)
    return None


class SaslMechanisms:
    """Checks credentials for every mechanism in ``KNOWN_MECHANISMS``.

    ``credentials`` maps a user to a password (PLAIN, LOGIN, CRAM-MD5, SCRAM-*);
    ``tokens`` maps a user to an OAuth2 bearer token (XOAUTH2, OAUTHBEARER);
    ``channel_binding_certificate`` is the server's certificate (PEM) for SCRAM-*-PLUS.
    """

    def __init__(self, credentials: Mapping[str, str], tokens: Mapping[str, str],
                 channel_binding_certificate: str | None = None) -> None:
        self._credentials = dict(credentials)
        self._tokens = dict(tokens)
        self._certificate = channel_binding_certificate
        self._scram_keys: dict[tuple[str, str], tuple[bytes, bytes, bytes, int]] = {}

    def offered_on(self, smtp: SMTP, mechanisms: Sequence[str]) -> list[str]:
        """The configured ``mechanisms`` that can work on this connection now."""
        tls = _tls_object(smtp) is not None
        return [name for name in mechanisms
                if not (name.endswith("-PLUS") and not (tls and self._certificate))
                and not (name == "EXTERNAL" and not tls)]

    def authenticate_password(
        self, smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """aiosmtpd ``authenticator`` for its built-in PLAIN and LOGIN."""
        if not isinstance(auth_data, LoginPassword):
            return _failed_without_answer()
        try:
            user = auth_data.login.decode()
        except UnicodeDecodeError:
            return _failed_without_answer()
        if not _matches(self._credentials.get(user), auth_data.password):
            return _failed_without_answer()
        return AuthResult(success=True, auth_data=AuthenticatedUser(mechanism, user))

    @auth_mechanism("CRAM-MD5")
    @_taking_long_responses
    async def auth_cram_md5(self, smtp: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            await smtp.push("501 5.5.2 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = f"<{secrets.randbits(64)}.{int(time.time())}@{smtp.hostname}>".encode()
        reply = await smtp.challenge_auth(challenge)
        if not isinstance(reply, bytes):
            return AuthResult(success=False, handled=True)
        login, _, digest = reply.rpartition(b" ")
        user = login.decode(errors="replace")
        password = self._credentials.get(user)
        if password is None:
            return _failed_without_answer()
        expected = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
        if not _matches(expected, digest.lower()):
            return _failed_without_answer()
        return AuthResult(success=True, auth_data=AuthenticatedUser("CRAM-MD5", user))

    @auth_mechanism("SCRAM-SHA-1")
    @_taking_long_responses
    async def auth_scram_sha_1(self, smtp: SMTP, args: list[str]) -> AuthResult:
        return await self._scram("SCRAM-SHA-1", smtp, args)

    @auth_mechanism("SCRAM-SHA-256")
    @_taking_long_responses
    async def auth_scram_sha_256(self, smtp: SMTP, args: list[str]) -> AuthResult:
        return await self._scram("SCRAM-SHA-256", smtp, args)

    @auth_mechanism("SCRAM-SHA-512")
    @_taking_long_responses
    async def auth_scram_sha_512(self, smtp: SMTP, args: list[str]) -> AuthResult:
        return await self._scram("SCRAM-SHA-512", smtp, args)

    @auth_mechanism("SCRAM-SHA-1-PLUS")
    @_taking_long_responses
    async def auth_scram_sha_1_plus(self, smtp: SMTP, args: list[str]) -> AuthResult:
        return await self._scram("SCRAM-SHA-1-PLUS", smtp, args)

    @auth_mechanism("SCRAM-SHA-256-PLUS")
    @_taking_long_responses
    async def auth_scram_sha_256_plus(self, smtp: SMTP, args: list[str]) -> AuthResult:
        return await self._scram("SCRAM-SHA-256-PLUS", smtp, args)

    @auth_mechanism("SCRAM-SHA-512-PLUS")
    @_taking_long_responses
    async def auth_scram_sha_512_plus(self, smtp: SMTP, args: list[str]) -> AuthResult:
        return await self._scram("SCRAM-SHA-512-PLUS", smtp, args)

    @auth_mechanism("XOAUTH2")
    @_taking_long_responses
    async def auth_xoauth2(self, smtp: SMTP, args: list[str]) -> AuthResult:
        """Google's XOAUTH2: a failure is a 334 JSON error, an empty reply, then 535."""
        response = await _initial_response(smtp, args)
        if response is None:
            return AuthResult(success=False, handled=True)
        parsed = _parse_xoauth2(response)
        if parsed is not None and _matches(self._tokens.get(parsed[0]), parsed[1]):
            return AuthResult(success=True, auth_data=AuthenticatedUser("XOAUTH2", parsed[0]))
        reply = await smtp.challenge_auth(json.dumps(XOAUTH2_ERROR))
        if not isinstance(reply, bytes):
            return AuthResult(success=False, handled=True)
        return _failed_without_answer()

    @auth_mechanism("OAUTHBEARER")
    @_taking_long_responses
    async def auth_oauthbearer(self, smtp: SMTP, args: list[str]) -> AuthResult:
        """RFC 7628: a failure is a 334 JSON error, the client's ``\x01``, then 535."""
        response = await _initial_response(smtp, args)
        if response is None:
            return AuthResult(success=False, handled=True)
        parsed = _parse_oauthbearer(response)
        if parsed is not None and _matches(self._tokens.get(parsed[0]), parsed[1]):
            return AuthResult(success=True,
                              auth_data=AuthenticatedUser("OAUTHBEARER", parsed[0]))
        reply = await smtp.challenge_auth(json.dumps(OAUTHBEARER_ERROR))
        if not isinstance(reply, bytes):
            return AuthResult(success=False, handled=True)
        if reply != b"\x01":
            await smtp.push("501 5.5.2 the answer to an OAUTHBEARER error must be %x01")
            return AuthResult(success=False, handled=True)
        return _failed_without_answer()

    @auth_mechanism("EXTERNAL")
    @_taking_long_responses
    async def auth_external(self, smtp: SMTP, args: list[str]) -> AuthResult:
        """The verified client certificate's identity; the authorization identity sent must
        be empty or the same."""
        authzid = await _initial_response(smtp, args)
        if authzid is None:
            return AuthResult(success=False, handled=True)
        ssl_object = _tls_object(smtp)
        identity = certificate_identity(ssl_object.getpeercert() if ssl_object else None)
        if identity is None or authzid not in (b"", identity.encode()):
            return _failed_without_answer()
        return AuthResult(success=True, auth_data=AuthenticatedUser("EXTERNAL", identity))

    async def _scram(self, mechanism_name: str, smtp: SMTP, args: list[str]) -> AuthResult:
        """RFC 5802 over RFC 4954: the server-final message goes in a 334, answered empty."""
        binding = self._binding_for(mechanism_name, smtp)
        if mechanism_name.endswith("-PLUS") and binding is None:
            await smtp.push("504 5.5.4 channel binding needs TLS")
            return AuthResult(success=False, handled=True)
        client_first = await _initial_response(smtp, args)
        if client_first is None:
            return AuthResult(success=False, handled=True)
        mechanism = ScramMechanism(mechanism_name)
        family = mechanism_name.removesuffix("-PLUS")
        users: list[str] = []

        def stored_keys(user: str) -> tuple[bytes, bytes, bytes, int] | None:
            users.append(user)
            password = self._credentials.get(user)
            if password is None:
                return None
            key = (family, user)
            if key not in self._scram_keys:
                self._scram_keys[key] = mechanism.make_auth_info(
                    password, iteration_count=SCRAM_ITERATIONS
                )
            return self._scram_keys[key]

        scram = mechanism.make_server(stored_keys, channel_binding=binding)
        try:
            scram.set_client_first(client_first.decode())
            client_final = await smtp.challenge_auth(scram.get_server_first())
            if not isinstance(client_final, bytes):
                return AuthResult(success=False, handled=True)
            scram.set_client_final(client_final.decode())
            server_final = scram.get_server_final()
        except (ScramException, UnicodeDecodeError):
            return _failed_without_answer()
        if not isinstance(await smtp.challenge_auth(server_final), bytes):
            return AuthResult(success=False, handled=True)
        return AuthResult(success=True, auth_data=AuthenticatedUser(mechanism_name, users[0]))

    def _binding_for(self, mechanism_name: str, smtp: SMTP) -> tuple[str, str] | None:
        """The channel binding the SCRAM server checks: for -PLUS, and for plain SCRAM on a
        connection that offers -PLUS (where a client's ``y`` means a downgrade)."""
        if not self._certificate or _tls_object(smtp) is None:
            return None
        if mechanism_name.endswith("-PLUS") or self._plus_offered(smtp):
            return (CHANNEL_BINDING, self._certificate)
        return None

    def _plus_offered(self, smtp: SMTP) -> bool:
        offered = getattr(smtp, "_auth_methods", {})
        return any(name.endswith("-PLUS") for name in offered)
