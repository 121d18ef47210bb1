"""AUTH NTLM against Postfix -> Dovecot -> Samba's winbindd (NTLMv2 only), both clients."""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from mailwire.auth import Credentials, SmtpKnownAuthenticationType, choose
from mailwire.auth.ntlm import Ntlm
from mailwire.errors import AuthenticationError, SmtpUsageError
from tests.support.clients import ClientFactory
from tests.support.samba_dovecot import DOMAIN, PASSWORD, USER, NtlmSmtp
from tests.support.scripted import (
    Expect,
    ExpectClose,
    Reply,
    ScriptedServerFactory,
    handshake,
)

MESSAGE = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: ntlm\r\n\r\nhi\r\n"
Auth = SmtpKnownAuthenticationType


@pytest.fixture
def ntlm(ntlm_smtp: NtlmSmtp) -> NtlmSmtp:
    ntlm_smtp.postfix.clear()
    return ntlm_smtp


def client_for(make_client: ClientFactory, server: NtlmSmtp, username: str = USER,
               password: str = PASSWORD, **options: Any) -> Any:
    return make_client(server.host, server.port, username, password, "ssl_explicit",
                       ca_file=str(server.postfix.ca_file), **options)


@pytest.mark.parametrize("username", [USER, f"{DOMAIN}\\{USER}"])
def test_a_message_goes_after_ntlm(
    username: str, ntlm: NtlmSmtp, make_client: ClientFactory
) -> None:
    client = client_for(make_client, ntlm, username=username)
    result = client.send(MESSAGE)
    assert result.accepted == ("bob@example.test",)
    assert client.connection_info.auth_mechanism == "NTLM"
    assert client.supported_authentication == Auth.NTLM
    client.quit()
    assert ntlm.postfix.message(to="bob@example.test").content.endswith(b"hi\n")
    logged = re.findall(r"sasl_method=NTLM, sasl_username=(\S+)", ntlm.postfix.log())
    assert f"{USER}@{DOMAIN.lower()}" in logged


def test_a_wrong_password_is_refused(ntlm: NtlmSmtp, make_client: ClientFactory) -> None:
    client = client_for(make_client, ntlm, password="not-the-password")
    with pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    assert caught.value.code == 535
    assert "not-the-password" not in str(caught.value)
    assert not client_for(make_client, ntlm, password="nope").validate_credentials()


def test_an_unknown_user_is_refused(ntlm: NtlmSmtp, make_client: ClientFactory) -> None:
    client = client_for(make_client, ntlm, username="mallory")
    with pytest.raises(AuthenticationError) as caught:
        client.send(MESSAGE)
    assert caught.value.code == 535


def test_ntlmv1_is_never_sent(
    ntlm: NtlmSmtp, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyspnego would answer with NTLMv1 (and LM) at these levels: mailwire refuses first."""
    monkeypatch.setenv("LM_COMPAT_LEVEL", "1")
    client = client_for(make_client, ntlm)
    with pytest.raises(SmtpUsageError, match="NTLMv2 only"):
        client.send(MESSAGE)


def test_messages_are_redacted_in_the_protocol_trace(
    ntlm: NtlmSmtp, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    client_for(make_client, ntlm).send(MESSAGE)
    sent = [r.getMessage() for r in caplog.records
            if r.name == "mailwire.protocol" and r.getMessage().startswith("C:")]
    assert "C: AUTH NTLM <redacted>" in sent
    assert "C: <redacted>" in sent
    assert not any("TlRMTVNT" in line for line in sent)  # base64 of "NTLMSSP"


# -- the extra --------------------------------------------------------------------------------

_BLOCK_SPNEGO = "import sys; sys.modules['spnego'] = None\n"


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_importing_mailwire_never_imports_pyspnego() -> None:
    completed = run_python("""
        import sys
        import mailwire, mailwire.auth, mailwire.cli
        extras = ('spnego', 'gssapi', 'krb5')
        loaded = [name for name in sys.modules if name.split('.')[0] in extras]
        assert not loaded, loaded
    """)
    assert completed.returncode == 0, completed.stderr


def test_without_the_extra_a_server_offering_only_ntlm_says_what_to_install(
    ntlm: NtlmSmtp
) -> None:
    completed = run_python(_BLOCK_SPNEGO + f"""
import mailwire
client = mailwire.SmtpClient({ntlm.host!r}, {ntlm.port}, {USER!r}, {PASSWORD!r},
                             "ssl_explicit", ca_file={str(ntlm.postfix.ca_file)!r})
try:
    client.connect()
except mailwire.SmtpUsageError as error:
    print("usage error:", error)
""")
    assert completed.returncode == 0, completed.stderr
    assert "usage error: the server offers NTLM, which needs the ntlm extra" in completed.stdout
    assert "pip install 'mailwire[ntlm]'" in completed.stdout


def test_without_the_extra_another_offered_mechanism_is_chosen() -> None:
    completed = run_python(_BLOCK_SPNEGO + """
from mailwire.auth import Credentials, SmtpKnownAuthenticationType, choose
print(choose(("NTLM", "LOGIN"), SmtpKnownAuthenticationType.ALL, Credentials("u", "p")).name())
""")
    assert completed.stdout.strip() == "LOGIN", completed.stderr


# -- choosing NTLM, and servers that misbehave ---------------------------------------------


def test_ntlm_sits_between_scram_and_cram_md5() -> None:
    password = Credentials(USER, PASSWORD)
    assert choose(("NTLM", "CRAM-MD5", "PLAIN", "LOGIN"), Auth.ALL, password) is Ntlm
    assert choose(("NTLM", "SCRAM-SHA-1"), Auth.ALL, password).name() == "SCRAM-SHA-1"
    assert choose(("NTLM",), Auth.ALL, password) is Ntlm
    with pytest.raises(AuthenticationError):
        choose(("NTLM",), Auth.ALL, Credentials(USER))  # NTLM needs the password


@pytest.mark.parametrize("challenge", [b"garbage", b"NTLMSSP\x00\x02\x00\x00\x00", b""])
def test_a_broken_challenge_is_an_authentication_error(
    challenge: bytes, scripted_server: ScriptedServerFactory, make_client: ClientFactory
) -> None:
    server = scripted_server(
        *handshake(["AUTH NTLM"]),
        Expect(b"AUTH NTLM TlRMTVNTUAAB"),  # the NEGOTIATE message as the initial response
        Reply(334, base64.b64encode(challenge).decode()),
        Expect(b"*"),
        Reply(501, "5.7.0 cancelled"),
        ExpectClose(),  # a server that broke the mechanism is not trusted further
    )
    client = make_client(server.host, server.port, USER, PASSWORD, "none",
                         allow_plaintext_credentials=True)
    with pytest.raises(AuthenticationError, match="NTLM"):
        client.connect()
    assert not client.is_connected
    client.quit()
