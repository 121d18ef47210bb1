"""The open registry, the preference table and ``allowed_authentication``, without a server.

The order in which mechanisms are preferred is one table (``mailwire.auth.preference``); these
tests hold ``choose`` to it pair by pair, and the README to the same order.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwire.auth import (
    PREFERENCE,
    AuthContext,
    Credentials,
    Mechanism,
    SaslFlow,
    SecretBytes,
    SmtpKnownAuthenticationType,
    allowed_names,
    choose,
    register,
    registered,
    supported_flags,
)
from mailwire.auth import mechanism as mechanism_module
from mailwire.auth.plain import Plain
from mailwire.errors import AuthenticationError, SmtpUsageError

Auth = SmtpKnownAuthenticationType
README = Path(__file__).resolve().parent.parent / "README.md"
PASSWORD = Credentials("tim", "tanstaaftanstaaf")
TOKEN = Credentials("tim", oauth_token="ya29.token")
BOTH = Credentials("tim", "tanstaaftanstaaf", "ya29.token")
CERTIFICATE_ONLY = Credentials("")


@pytest.fixture(scope="module")
def server_certificate() -> bytes:
    import ssl

    import trustme

    leaf = trustme.CA().issue_cert("mail.example.test")
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


@pytest.fixture
def tls(server_certificate: bytes) -> AuthContext:
    """A TLS connection with a server certificate to bind to and a client certificate."""
    return AuthContext("mail.example.test", 587, tls=True, peer_certificate=server_certificate,
                       client_certificate=True)


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = dict(mechanism_module._REGISTRY)
    try:
        yield
    finally:
        mechanism_module._REGISTRY.clear()
        mechanism_module._REGISTRY.update(saved)


def with_offer(context: AuthContext, offered: tuple[str, ...]) -> AuthContext:
    return AuthContext(context.host, context.port, context.tls, context.peer_certificate,
                       context.client_certificate, offered)


# -- the preference table --------------------------------------------------------------------


def test_every_builtin_has_its_place_in_the_table() -> None:
    assert set(registered()) <= set(PREFERENCE)


def test_the_table_names_every_flag() -> None:
    assert {flag.mechanism_name for flag in Auth} <= set(PREFERENCE)


@pytest.mark.parametrize(("stronger", "weaker"), [
    pair for pair in itertools.combinations(PREFERENCE, 2)
    if pair[0] in registered() and pair[1] in registered()
    and registered()[pair[0]].usable_with(BOTH) and registered()[pair[1]].usable_with(BOTH)
])
def test_choose_follows_the_table(tls: AuthContext, stronger: str, weaker: str) -> None:
    """Every pair of built-ins offered together, with credentials that fit both: the one
    higher in the table wins, whatever the server's order."""
    for offered in ((stronger, weaker), (weaker, stronger)):
        assert choose(offered, Auth.ALL, BOTH, with_offer(tls, offered)).name() == stronger


def test_a_kerberos_ticket_wins_over_the_certificate(tls: AuthContext) -> None:
    """GSSAPI fits credentials with neither password nor token (the ticket is the secret); of
    the mechanisms such credentials fit, it is higher in the table than EXTERNAL."""
    ticket_only = Credentials("alice@EXAMPLE.TEST")
    offered = ("EXTERNAL", "GSSAPI", "NTLM", "PLAIN")
    assert choose(offered, Auth.ALL, ticket_only, with_offer(tls, offered)).name() == "GSSAPI"


def test_a_token_wins_over_a_password(tls: AuthContext) -> None:
    offered = tuple(registered())
    assert choose(offered, Auth.ALL, BOTH, with_offer(tls, offered)).name() == "OAUTHBEARER"
    assert choose(offered, Auth.ALL, PASSWORD, with_offer(tls, offered)).name() == (
        "SCRAM-SHA-512-PLUS")


def test_plus_needs_tls_and_a_certificate_to_bind_to(tls: AuthContext) -> None:
    offered = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256")
    assert choose(offered, Auth.ALL, PASSWORD, with_offer(tls, offered)).name() == (
        "SCRAM-SHA-256-PLUS")
    plaintext = AuthContext("h", 25, tls=False, offered=offered)
    assert choose(offered, Auth.ALL, PASSWORD, plaintext).name() == "SCRAM-SHA-256"
    no_certificate = AuthContext("h", 465, tls=True, offered=offered)
    assert choose(offered, Auth.ALL, PASSWORD, no_certificate).name() == "SCRAM-SHA-256"
    with pytest.raises(AuthenticationError, match="SCRAM-SHA-256-PLUS"):
        choose(offered[:1], Auth.ALL, PASSWORD, AuthContext("h", 25, offered=offered[:1]))


def test_external_is_the_last_resort(tls: AuthContext) -> None:
    offered = ("EXTERNAL", "PLAIN")
    context = with_offer(tls, offered)
    assert choose(offered, Auth.ALL, PASSWORD, context).name() == "PLAIN"
    assert choose(offered, Auth.ALL, CERTIFICATE_ONLY, context).name() == "EXTERNAL"
    assert choose(offered, Auth.EXTERNAL, PASSWORD, context).name() == "EXTERNAL"


def test_external_needs_tls_with_a_client_certificate() -> None:
    offered = ("EXTERNAL",)
    for context in (AuthContext("h", 25, tls=False, client_certificate=True, offered=offered),
                    AuthContext("h", 465, tls=True, client_certificate=False, offered=offered)):
        with pytest.raises(AuthenticationError, match="no password or token"):
            choose(offered, Auth.ALL, CERTIFICATE_ONLY, context)


def test_the_readme_states_the_tables_order() -> None:
    """README "Authentication" lists the order; it must be the table's."""
    text = README.read_text()
    match = re.search(r"preferred in this order[^:]*:\s*(.+?)\.\s", text, re.S)
    assert match, "README must state the order as 'preferred in this order: A > B > ...'"
    listed = [name.strip(" `\n") for name in match.group(1).split(">")]
    assert listed == list(PREFERENCE)


# -- the registry -----------------------------------------------------------------------------


class Hello(Mechanism):
    """A user's own mechanism: no flag, its own name."""

    sasl_name = "X-HELLO"

    def flow(self) -> SaslFlow:
        yield SecretBytes(b"hello " + self.password_secret.utf8("password"))


def test_a_users_mechanism_plugs_in_without_a_flag(restore_registry: None) -> None:
    register(Hello)
    assert registered()["X-HELLO"] is Hello
    offered = ("X-HELLO", "SCRAM-SHA-256", "PLAIN")
    # Registered and not in the table: preferred, since registering it says it is wanted.
    assert choose(offered, Auth.ALL, PASSWORD) is Hello
    assert choose(offered, {"X-HELLO"}, PASSWORD) is Hello
    assert choose(offered, ["x-hello", Auth.PLAIN], PASSWORD) is Hello
    # Flags other than ALL speak only of the built-ins.
    assert choose(offered, Auth.SCRAM_SHA_256 | Auth.PLAIN, PASSWORD).name() == "SCRAM-SHA-256"
    assert choose(offered, "PLAIN, X-HELLO", PASSWORD) is Hello
    # It has no flag, so supported_authentication does not list it.
    assert supported_flags(offered) == Auth.SCRAM_SHA_256 | Auth.PLAIN


def test_registering_a_builtins_name_replaces_it(restore_registry: None) -> None:
    @register
    class MyPlain(Plain):
        pass

    assert registered()["PLAIN"] is MyPlain
    assert choose(("PLAIN",), Auth.PLAIN, PASSWORD) is MyPlain


@pytest.mark.parametrize("name", ["", "lower", "TWENTY-ONE-CHARACTERS", "SP ACE", "X\r\nRSET"])
def test_register_refuses_what_is_not_a_sasl_name(restore_registry: None, name: str) -> None:
    class Bad(Hello):
        sasl_name = name

    with pytest.raises(SmtpUsageError):
        register(Bad)
    assert name not in registered()


# -- allowed_authentication --------------------------------------------------------------------


def test_all_allows_every_registered_mechanism(restore_registry: None) -> None:
    register(Hello)
    assert allowed_names(Auth.ALL) == frozenset(registered())


@pytest.mark.parametrize(("allowed", "names"), [
    (Auth.PLAIN | Auth.LOGIN, {"PLAIN", "LOGIN"}),
    (Auth.NONE, set()),
    ({"scram-sha-256", "PLAIN"}, {"SCRAM-SHA-256", "PLAIN"}),
    (["SCRAM_SHA_1", Auth.CRAM_MD5], {"SCRAM-SHA-1", "CRAM-MD5"}),
    ("PLAIN,LOGIN  X-HELLO", {"PLAIN", "LOGIN", "X-HELLO"}),
    ((), set()),
])
def test_allowed_names(allowed: object, names: set[str]) -> None:
    assert allowed_names(allowed) == names  # type: ignore[arg-type]


def test_allowed_refuses_other_types() -> None:
    with pytest.raises(SmtpUsageError, match="flags or SASL mechanism names"):
        allowed_names([3])  # type: ignore[list-item]


def test_nothing_allowed_names_both_sides() -> None:
    with pytest.raises(AuthenticationError) as caught:
        choose(("GSSAPI", "NTLM"), {"PLAIN", "CRAM-MD5"}, PASSWORD,
               AuthContext("::1", 25, offered=("GSSAPI", "NTLM")))
    message = str(caught.value)
    for name in ("GSSAPI", "NTLM", "PLAIN", "CRAM-MD5", "[::1]:25", "a password"):
        assert name in message


# -- the flags -------------------------------------------------------------------------------


def test_all_is_every_flag() -> None:
    every = Auth.NONE
    for flag in Auth:
        every |= flag
    assert every == Auth.ALL
    assert len(list(Auth)) == len(list(Auth.ALL))


def test_flags_print_as_sasl_names_strongest_first() -> None:
    assert str(Auth.PLAIN | Auth.SCRAM_SHA_256 | Auth.LOGIN) == "SCRAM-SHA-256, PLAIN, LOGIN"
    assert repr(Auth.CRAM_MD5 | Auth.SCRAM_SHA_1_PLUS) == (
        "<SmtpKnownAuthenticationType: SCRAM-SHA-1-PLUS, CRAM-MD5>")
    assert str(Auth.NONE) == "none"
    assert "ALL" not in str(Auth.ALL) and "ALL" not in repr(Auth.ALL)
    flagged = {flag.mechanism_name for flag in Auth}
    assert Auth.ALL.mechanism_names == tuple(name for name in PREFERENCE if name in flagged)
    assert f"{Auth.SCRAM_SHA_512_PLUS}" == "SCRAM-SHA-512-PLUS"


def test_new_flags_have_their_sasl_names() -> None:
    assert [flag.mechanism_name for flag in (
        Auth.OAUTHBEARER, Auth.EXTERNAL, Auth.SCRAM_SHA_512, Auth.SCRAM_SHA_1_PLUS,
        Auth.SCRAM_SHA_256_PLUS, Auth.SCRAM_SHA_512_PLUS)] == [
        "OAUTHBEARER", "EXTERNAL", "SCRAM-SHA-512", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-512-PLUS"]
