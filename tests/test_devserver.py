"""The development SMTP server, driven by the standard library's smtplib as the client."""

from __future__ import annotations

import base64
import json
import smtplib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from scramp import ScramClient

from mailwire.devserver import ALL_MECHANISMS, Certificates, DevServer, ReceivedMessage, TlsMode

StartServer = Callable[..., DevServer]

MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\n.leading dot\r\nbody\r\n"
CREDENTIALS = {"alice": "correct horse"}
TOKENS = {"alice": "ya29.token"}


def ehlo_keywords(client: smtplib.SMTP) -> list[str]:
    code, reply = client.ehlo()
    assert code == 250
    return reply.decode().splitlines()[1:]


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(reply: bytes) -> str:
    return base64.b64decode(reply).decode()


def send_one(client: smtplib.SMTP, server: DevServer) -> ReceivedMessage:
    client.sendmail("a@example.com", ["b@example.com"], MESSAGE)
    (message,) = server.wait_for_messages(1)
    return message


def test_plaintext_message_is_recorded_byte_for_byte(smtp_server: StartServer) -> None:
    server = smtp_server()
    with smtplib.SMTP(server.host, server.port) as client:
        client.sendmail("a@example.com", ["b@example.com", "c@example.com"], MESSAGE)
        assert client.sock is not None
        local_address = client.sock.getsockname()

    (message,) = server.wait_for_messages(1)
    assert message.data == MESSAGE
    assert message.mail_from == "a@example.com"
    assert message.rcpt_tos == ("b@example.com", "c@example.com")
    assert message.peer == local_address
    assert message.tls_version is None
    assert message.auth_mechanism is message.auth_user is None


def test_default_ehlo_offers_pipelining_size_8bitmime_smtputf8_only(
    smtp_server: StartServer,
) -> None:
    server = smtp_server()
    with smtplib.SMTP(server.host, server.port) as client:
        assert ehlo_keywords(client) == [
            "PIPELINING",
            "SIZE 33554432",
            "8BITMIME",
            "SMTPUTF8",
            "HELP",
        ]


def test_ehlo_extensions_can_be_turned_off(smtp_server: StartServer) -> None:
    server = smtp_server(pipelining=False, data_size_limit=None, smtputf8=False)
    with smtplib.SMTP(server.host, server.port) as client:
        assert ehlo_keywords(client) == ["8BITMIME", "HELP"]


def test_starttls_verified_against_the_ca(
    smtp_server: StartServer, certificates: Certificates
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS)
    with smtplib.SMTP("localhost", server.port) as client:
        assert "STARTTLS" in ehlo_keywords(client)
        client.starttls(context=certificates.client_context())
        assert "STARTTLS" not in ehlo_keywords(client)
        message = send_one(client, server)
    assert message.tls_version is not None and message.tls_version.startswith("TLSv1.")


def test_implicit_tls(smtp_server: StartServer, certificates: Certificates) -> None:
    server = smtp_server(tls=TlsMode.IMPLICIT, credentials=CREDENTIALS)
    with smtplib.SMTP_SSL(
        "127.0.0.1", server.port, context=certificates.client_context()
    ) as client:
        keywords = ehlo_keywords(client)
        assert "STARTTLS" not in keywords
        assert f"AUTH {' '.join(ALL_MECHANISMS)}" in keywords
        client.login("alice", "correct horse")
        message = send_one(client, server)
    assert message.tls_version is not None
    assert message.auth_user == "alice"


@pytest.mark.parametrize("fixture", ["unknown_ca_certificates", "wrong_host_certificates"])
def test_client_refuses_untrusted_server_certificates(
    smtp_server: StartServer,
    certificates: Certificates,
    fixture: str,
    request: pytest.FixtureRequest,
) -> None:
    server = smtp_server(tls=TlsMode.IMPLICIT, certificates=request.getfixturevalue(fixture))
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL("localhost", server.port, context=certificates.client_context())


def test_custom_ssl_context_limits_tls_version(
    smtp_server: StartServer, certificates: Certificates
) -> None:
    context = certificates.server_context(maximum_version=ssl.TLSVersion.TLSv1_2)
    server = smtp_server(tls=TlsMode.STARTTLS, ssl_context=context)
    with smtplib.SMTP("localhost", server.port) as client:
        client.starttls(context=certificates.client_context())
        message = send_one(client, server)
    assert message.tls_version == "TLSv1.2"


def test_auth_waits_for_tls_by_default(
    smtp_server: StartServer, certificates: Certificates
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS, credentials=CREDENTIALS)
    with smtplib.SMTP("localhost", server.port) as client:
        assert not any(keyword.startswith("AUTH") for keyword in ehlo_keywords(client))
        assert client.docmd("AUTH", "PLAIN " + b64("\0alice\0correct horse"))[0] == 538
        client.starttls(context=certificates.client_context())
        assert f"AUTH {' '.join(ALL_MECHANISMS)}" in ehlo_keywords(
            client
        )
        client.login("alice", "correct horse")


def test_mechanisms_are_advertised_in_the_given_order(smtp_server: StartServer) -> None:
    server = smtp_server(
        credentials=CREDENTIALS, mechanisms=("xoauth2", "PLAIN"), auth_require_tls=False
    )
    with smtplib.SMTP(server.host, server.port) as client:
        assert "AUTH XOAUTH2 PLAIN" in ehlo_keywords(client)
        assert client.docmd("AUTH", "LOGIN")[0] == 504


def test_no_credentials_means_no_auth(smtp_server: StartServer) -> None:
    server = smtp_server(auth_require_tls=False)
    with smtplib.SMTP(server.host, server.port) as client:
        assert not any(keyword.startswith("AUTH") for keyword in ehlo_keywords(client))


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_password_mechanisms(smtp_server: StartServer, mechanism: str) -> None:
    server = smtp_server(credentials=CREDENTIALS, mechanisms=(mechanism,), auth_require_tls=False)
    with smtplib.SMTP(server.host, server.port) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("alice", "wrong")
        assert refused.value.smtp_code == 535
        client.login("alice", "correct horse")
        message = send_one(client, server)
    assert (message.auth_mechanism, message.auth_user) == (mechanism, "alice")


def scram_exchange(client: smtplib.SMTP, mechanism: str, password: str) -> tuple[int, bytes]:
    scram = ScramClient([mechanism], "alice", password)
    code, reply = client.docmd("AUTH", f"{mechanism} {b64(scram.get_client_first())}")
    assert code == 334
    scram.set_server_first(unb64(reply))
    code, reply = client.docmd(b64(scram.get_client_final()))
    if code != 334:
        return code, reply
    scram.set_server_final(unb64(reply))
    return client.docmd("")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_scram_mechanisms(smtp_server: StartServer, mechanism: str) -> None:
    server = smtp_server(credentials=CREDENTIALS, auth_require_tls=False)
    with smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        assert scram_exchange(client, mechanism, "wrong")[0] == 535
        assert scram_exchange(client, mechanism, "correct horse")[0] == 235
        message = send_one(client, server)
    assert (message.auth_mechanism, message.auth_user) == (mechanism, "alice")


def test_scram_unknown_user_fails(smtp_server: StartServer) -> None:
    server = smtp_server(credentials=CREDENTIALS, auth_require_tls=False)
    with smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        scram = ScramClient(["SCRAM-SHA-256"], "mallory", "x")
        assert client.docmd("AUTH", f"SCRAM-SHA-256 {b64(scram.get_client_first())}")[0] == 535


def test_xoauth2(smtp_server: StartServer) -> None:
    server = smtp_server(credentials={}, tokens=TOKENS, auth_require_tls=False)
    with smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        code, reply = client.docmd("AUTH", "XOAUTH2 " + b64("user=alice\1auth=Bearer bad\1\1"))
        assert code == 334
        assert json.loads(unb64(reply))["status"] == "401"
        assert client.docmd("")[0] == 535

        code, _ = client.docmd("AUTH", "XOAUTH2")
        assert code == 334
        assert client.docmd(b64("user=alice\1auth=Bearer ya29.token\1\1"))[0] == 235
        message = send_one(client, server)
    assert (message.auth_mechanism, message.auth_user) == ("XOAUTH2", "alice")


def test_refused_recipient_and_sender(smtp_server: StartServer) -> None:
    server = smtp_server(refuse_recipients={"Nobody@example.com"}, refuse_senders={"spam@x.y"})
    with smtplib.SMTP(server.host, server.port) as client:
        refused = client.sendmail("a@example.com", ["b@example.com", "nobody@example.com"], MESSAGE)
        code, reply = refused["nobody@example.com"]
        assert code == 550 and reply.startswith(b"5.1.1")
        with pytest.raises(smtplib.SMTPSenderRefused) as sender_refused:
            client.sendmail("spam@x.y", ["b@example.com"], MESSAGE)
        assert sender_refused.value.smtp_code == 550
    (message,) = server.wait_for_messages(1)
    assert message.rcpt_tos == ("b@example.com",)


def test_null_sender_is_recorded_as_empty(smtp_server: StartServer) -> None:
    server = smtp_server()
    with smtplib.SMTP(server.host, server.port) as client:
        client.sendmail("<>", ["b@example.com"], MESSAGE)
    assert server.wait_for_messages(1)[0].mail_from == ""


def test_size_limit_refuses_large_messages(smtp_server: StartServer) -> None:
    server = smtp_server(data_size_limit=100)
    with smtplib.SMTP(server.host, server.port) as client:
        assert "SIZE 100" in ehlo_keywords(client)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@example.com", ["b@example.com"], MESSAGE * 10)
        assert refused.value.smtp_code == 552


def test_require_starttls(smtp_server: StartServer) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS, require_starttls=True)
    with smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        assert client.docmd("MAIL", "FROM:<a@example.com>")[0] == 530


def test_maildir_files_sort_in_arrival_order(smtp_server: StartServer, tmp_path: Path) -> None:
    server = smtp_server(maildir=tmp_path / "mail")
    bodies = [MESSAGE + b"number %d\r\n" % n for n in range(3)]
    with smtplib.SMTP(server.host, server.port) as client:
        for body in bodies:
            client.sendmail("a@example.com", ["b@example.com"], body)
    messages = server.wait_for_messages(3)
    files = sorted((tmp_path / "mail").iterdir())
    assert [path.suffix for path in files] == [".eml"] * 3
    assert [path.read_bytes() for path in files] == bodies
    assert [message.saved_as for message in messages] == files


def test_pipelined_commands_are_answered_in_order(smtp_server: StartServer) -> None:
    server = smtp_server()
    with socket.create_connection(server.address) as sock, sock.makefile("rb") as replies:
        replies.readline()
        sock.sendall(b"EHLO client\r\n")
        while replies.readline()[3:4] == b"-":
            pass
        sock.sendall(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
        assert [replies.readline()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        sock.sendall(b"hi\r\n.\r\nQUIT\r\n")
        assert [replies.readline()[:3] for _ in range(2)] == [b"250", b"221"]
    assert server.wait_for_messages(1)[0].data == b"hi\r\n"


def test_on_message_wait_and_clear(smtp_server: StartServer) -> None:
    seen: list[ReceivedMessage] = []
    server = smtp_server(on_message=seen.append, hostname="mx.test")
    with smtplib.SMTP(server.host, server.port, local_hostname="client.test") as client:
        assert client.ehlo_resp is None and client.ehlo()[1].startswith(b"mx.test")
        message = send_one(client, server)
    assert seen == [message]
    assert message.helo_name == "client.test"
    server.clear()
    assert server.messages == []
    with pytest.raises(TimeoutError):
        server.wait_for_messages(1, timeout=0.05)


def test_ipv6(smtp_server: StartServer) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = smtp_server(host="::1")
    except OSError:
        pytest.skip("cannot bind ::1")
    with smtplib.SMTP(server.host, server.port) as client:
        message = send_one(client, server)
    assert message.peer[0] == "::1"


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown SASL"):
        DevServer(credentials=CREDENTIALS, mechanisms=("GSSAPI",))
    with pytest.raises(ValueError, match="needs certificates"):
        DevServer(tls=TlsMode.STARTTLS)
    with pytest.raises(ValueError, match="require_starttls"):
        DevServer(require_starttls=True)


def test_stop_closes_open_connections(smtp_server: StartServer) -> None:
    server = smtp_server()
    client = smtplib.SMTP(server.host, server.port)
    client.ehlo()
    server.stop()
    with pytest.raises(smtplib.SMTPServerDisconnected):
        client.noop()
    client.close()


def test_captured_mail_and_tls_files_are_private(smtp_server: StartServer,
                                                 tmp_path: Path) -> None:
    """0600 files, a 0700 folder, whatever the umask (SECURITY.md, "The development server and
    passwords on the command line")."""
    import os
    import stat

    previous = os.umask(0o022)
    try:
        certificates = Certificates.generate(tmp_path / "tls")
        certificates.generate(tmp_path / "tls")  # again, over files that exist
        server = smtp_server(maildir=tmp_path / "mail", certificates=certificates)
        with smtplib.SMTP(server.host, server.port) as client:
            send_one(client, server)
    finally:
        os.umask(previous)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    (saved,) = (tmp_path / "mail").iterdir()
    assert mode(saved) == 0o600
    assert mode(tmp_path / "mail") == 0o700
    assert mode(tmp_path / "tls") == 0o700
    for path in (certificates.key_file, certificates.cert_file, certificates.ca_file):
        assert mode(path) == 0o600, path
