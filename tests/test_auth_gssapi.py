"""AUTH GSSAPI (RFC 4752) against a real MIT KDC and Postfix with Cyrus SASL, both clients."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mailwire import SmtpClient
from mailwire.auth import Credentials, SmtpKnownAuthenticationType, choose, register
from mailwire.auth.gssapi import Gssapi
from mailwire.errors import AuthenticationError, SmtpUsageError
from tests.support.clients import ClientFactory
from tests.support.gssapi_acceptor import Ending, GssapiAcceptorServer
from tests.support.kerberos import (
    OTHER_SERVICE_HOST,
    OTHER_USER,
    REALM,
    SERVICE_HOST,
    USER,
    KerberosRealm,
    KerberosSmtp,
)

MESSAGE = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: kerberos\r\n\r\nhi\r\n"
Auth = SmtpKnownAuthenticationType


@pytest.fixture
def kerberos(kerberos_smtp: KerberosSmtp, kerberos_client: Path) -> KerberosSmtp:
    """The GSSAPI server, with this process holding the user's ticket-granting ticket."""
    kerberos_smtp.postfix.clear()
    kerberos_smtp.log_mark = len(kerberos_smtp.postfix.log())
    return kerberos_smtp


@pytest.fixture
def registered_gssapi() -> Iterator[Callable[..., None]]:
    """``registered_gssapi(**settings)``: a configured GSSAPI for this test only."""

    def configure(**settings: Any) -> None:
        register(Gssapi.configured(**settings))

    yield configure
    register(Gssapi)


def client_for(make_client: ClientFactory, server: KerberosSmtp, username: str = USER,
               host: str | None = None, **options: Any) -> Any:
    return make_client(host or server.host, server.port, username, None, "ssl_explicit",
                       ca_file=str(server.postfix.ca_file), **options)


def sasl_users(server: KerberosSmtp) -> list[str]:
    """The users Postfix logged as authenticated during this test (Cyrus drops the realm)."""
    log = server.postfix.log()[server.log_mark:]
    return [f"{user}@{REALM}" for user in
            re.findall(r"sasl_method=GSSAPI, sasl_username=(\S+)", log)]


def test_a_message_goes_with_the_users_ticket(
    kerberos: KerberosSmtp, make_client: ClientFactory
) -> None:
    client = client_for(make_client, kerberos)
    result = client.send(MESSAGE)
    assert result.accepted == ("bob@example.test",)
    assert client.connection_info.auth_mechanism == "GSSAPI"
    assert client.supported_authentication == Auth.GSSAPI
    client.quit()
    assert kerberos.postfix.message(to="bob@example.test").content.endswith(b"hi\n")
    assert USER in sasl_users(kerberos)


def test_an_empty_user_name_means_the_caches_principal(
    kerberos: KerberosSmtp, make_client: ClientFactory
) -> None:
    client = client_for(make_client, kerberos, username="")
    assert client.validate_credentials()


def test_a_client_keytab_gets_the_ticket_when_the_cache_is_empty(
    kerberos: KerberosSmtp, kerberos_realm: KerberosRealm, make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'empty-cache'}")
    monkeypatch.setenv("KRB5_CLIENT_KTNAME", f"FILE:{kerberos_realm.other_keytab}")
    client = client_for(make_client, kerberos, username=OTHER_USER)
    client.send(MESSAGE)
    assert OTHER_USER in sasl_users(kerberos)


@pytest.mark.parametrize("setting", ["ccache", "keytab"])
def test_a_configured_cache_or_keytab_is_used_instead_of_the_default(
    setting: str, kerberos: KerberosSmtp, kerberos_realm: KerberosRealm,
    registered_gssapi: Callable[..., None], make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'missing'}")  # the default: nothing
    if setting == "ccache":
        ccache = tmp_path / "bob-cache"
        kerberos_realm.kinit(ccache, principal=OTHER_USER)
        registered_gssapi(ccache=f"FILE:{ccache}")
    else:
        registered_gssapi(keytab=f"FILE:{kerberos_realm.other_keytab}")
    client = client_for(make_client, kerberos, username=OTHER_USER)
    client.send(MESSAGE)
    assert OTHER_USER in sasl_users(kerberos)


def test_the_service_is_named_from_the_host_as_given_not_its_address(
    kerberos: KerberosSmtp, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    client = client_for(make_client, kerberos, host="127.0.0.1")
    with pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    assert "smtp@127.0.0.1" in str(caught.value)
    assert "not found in Kerberos database" in str(caught.value)
    assert not any("AUTH" in r.getMessage() for r in caplog.records if r.msg.startswith("C:")), \
        "nothing is sent when no ticket can be had"


def test_a_configured_service_name_is_used(
    kerberos: KerberosSmtp, registered_gssapi: Callable[..., None], make_client: ClientFactory
) -> None:
    registered_gssapi(service=f"smtp@{SERVICE_HOST}")
    client = client_for(make_client, kerberos, host="127.0.0.1")
    client.send(MESSAGE)
    assert USER in sasl_users(kerberos)


def test_a_service_whose_key_the_server_lacks_is_refused_by_the_server(
    kerberos: KerberosSmtp, registered_gssapi: Callable[..., None], make_client: ClientFactory
) -> None:
    registered_gssapi(service=f"smtp@{OTHER_SERVICE_HOST}")
    client = client_for(make_client, kerberos)
    with pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    assert caught.value.code == 535
    assert not client.validate_credentials()


def test_a_missing_credential_cache_is_a_clear_error(
    kerberos: KerberosSmtp, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-such-cache'}")
    client = client_for(make_client, kerberos)
    with pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    message = str(caught.value)
    assert f"GSSAPI for smtp@{SERVICE_HOST} as {USER}" in message
    assert "kinit" in message
    assert caught.value.code is None  # decided here: nothing was sent


def test_a_cache_of_another_principal_is_a_clear_error(
    kerberos: KerberosSmtp, kerberos_realm: KerberosRealm, make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    ccache = tmp_path / "bob-cache"
    kerberos_realm.kinit(ccache, principal=OTHER_USER)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    client = client_for(make_client, kerberos, username=USER)
    with pytest.raises(AuthenticationError, match=f"as {USER}.*no usable Kerberos credential"):
        client.send(MESSAGE)


def test_tokens_are_redacted_in_the_protocol_trace(
    kerberos: KerberosSmtp, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    client = client_for(make_client, kerberos)
    client.send(MESSAGE)
    sent = [r.getMessage() for r in caplog.records
            if r.name == "mailwire.protocol" and r.getMessage().startswith("C:")]
    # The first token is too long for the AUTH line (512 octets): it follows the empty
    # challenge; then the empty answer to the AP-REP and the security-layer answer.
    assert "C: AUTH GSSAPI" in sent
    assert sent.count("C: <redacted>") == 3
    assert not any(line.startswith("C: YII") for line in sent)  # a base64 GSS token


# -- the last steps of RFC 4752, against a server that gets them wrong ---------------------


@pytest.fixture
def acceptor_env(kerberos_realm: KerberosRealm, kerberos_client: Path,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRB5_KTNAME", f"FILE:{kerberos_realm.service_keytab}")


def plaintext_client(server: GssapiAcceptorServer) -> SmtpClient:
    client = SmtpClient(SERVICE_HOST, server.port, USER, None, "none",
                        allow_plaintext_credentials=True, timeout=10)
    return client


@pytest.mark.usefixtures("acceptor_env")
def test_the_security_layer_answer_is_no_layer_size_zero_no_authzid(
    gssapi_acceptor: Callable[[Ending], GssapiAcceptorServer]
) -> None:
    server = gssapi_acceptor(Ending.CORRECT)
    with plaintext_client(server) as client:
        assert client.validate_credentials()
    assert server.answer == b"\x01\x00\x00\x00"
    assert not server.errors


@pytest.mark.usefixtures("acceptor_env")
@pytest.mark.parametrize(("ending", "complaint"), [
    (Ending.SUCCESS_BEFORE_MUTUAL, "before proving its identity"),
    (Ending.INTEGRITY_ONLY, "requires a security layer"),
    (Ending.SHORT_OFFER, "3 octets"),
    (Ending.UNWRAPPED_OFFER, "offer is not valid"),
    (Ending.MORE_AFTER_ANSWER, "asked for more"),
])
def test_a_server_that_breaks_rfc_4752_is_refused(
    ending: Ending, complaint: str, gssapi_acceptor: Callable[[Ending], GssapiAcceptorServer]
) -> None:
    server = gssapi_acceptor(ending)
    with plaintext_client(server) as client, pytest.raises(AuthenticationError, match=complaint):
        client.connect()
    if ending is not Ending.SUCCESS_BEFORE_MUTUAL:
        assert b"*\r\n" in server.received, "the exchange is cancelled"
    assert not server.errors


# -- choosing GSSAPI ------------------------------------------------------------------------


def test_gssapi_is_chosen_without_a_password_and_never_with_one() -> None:
    offered = ("GSSAPI", "PLAIN", "SCRAM-SHA-256")
    assert choose(offered, Auth.ALL, Credentials(USER)) is Gssapi
    assert choose(offered, Auth.ALL, Credentials(USER, "secret")).name() == "SCRAM-SHA-256"
    with pytest.raises(AuthenticationError, match="GSSAPI"):
        choose(("GSSAPI",), Auth.ALL, Credentials(USER, "secret"))
    with pytest.raises(AuthenticationError):
        choose(offered, Auth.ALL & ~Auth.GSSAPI, Credentials(USER))


@pytest.mark.parametrize("service", ["smtp", "@host", "smtp@", "smtp@ho st", "smtp@host\r\n"])
def test_a_malformed_service_name_is_a_usage_error(service: str) -> None:
    with pytest.raises(SmtpUsageError, match="service@host"):
        Gssapi.configured(service=service)


def test_a_cache_and_a_keytab_together_are_a_usage_error() -> None:
    with pytest.raises(SmtpUsageError):
        Gssapi.configured(ccache="FILE:/a", keytab="FILE:/b")


def test_without_the_extra_gssapi_says_what_to_install() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["gssapi"] = None
        from mailwire.auth import Credentials, SmtpKnownAuthenticationType, choose
        from mailwire.errors import SmtpUsageError
        try:
            choose(("GSSAPI",), SmtpKnownAuthenticationType.ALL, Credentials("alice"))
        except SmtpUsageError as error:
            print(error)
    """)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=60, check=False)
    assert "GSSAPI, which needs the kerberos extra" in completed.stdout, completed.stderr
    assert "pip install 'mailwire[kerberos]'" in completed.stdout
