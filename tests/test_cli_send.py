"""``mailwire send`` run as a subprocess against development servers: what arrives, byte for
byte where it matters, what is printed, the exit statuses, and the redacted ``-v`` trace."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire.cli import app
from mailwire.devserver import Certificates, DevServer, TlsMode
from tests.support.cli import assert_one_error_line, cli_env, parse_eml, run_cli

StartServer = Callable[..., DevServer]
PASSWORD = "Corr3ct-h0rse-battery"
USER = "alice"


@pytest.fixture
def auth_server(smtp_server: StartServer) -> DevServer:
    return smtp_server(tls=TlsMode.STARTTLS, credentials={USER: PASSWORD},
                       refuse_recipients=["nobody@example.com", "ghost@example.com"])


def server_options(server: DevServer, certificates: Certificates) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(server.port),
            "--ca-file", str(certificates.ca_file), "--user", USER, "--password-env", "PW"]


def test_send_with_attachments_arrives_intact(
    auth_server: DevServer, certificates: Certificates, tmp_path: Path
) -> None:
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 64 + b"\r\n.\r\n\x00end")
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4\n" + bytes(range(200)))
    notes = tmp_path / "notes.txt"
    notes.write_bytes("line one\r\nline two, ünïcode\n".encode())
    archive = tmp_path / "logs.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + b"\xff" * 100)
    result = run_cli(
        "send", *server_options(auth_server, certificates),
        "--from", "Alice <alice@example.com>", "--to", "bob@example.com",
        "--to", "carol@example.com", "--cc", "dave@example.com", "--bcc", "eve@example.com",
        "--subject", "Quarterly report ✓", "--body", "See attached.\n",
        "--html", "<p>See <b>attached</b>.</p>",
        "--attach", str(binary), "--attach", str(report), "--attach", str(notes),
        "--attach", str(archive),
        cwd=tmp_path, env=cli_env(tmp_path, PW=PASSWORD))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for address in ("bob@example.com", "carol@example.com", "dave@example.com",
                    "eve@example.com"):
        assert f"accepted  {address}" in result.stdout
    assert "server    250 OK" in result.stdout
    assert "SSL_EXPLICIT, TLSv1." in result.stdout and "AUTH SCRAM-SHA-512-PLUS" in result.stdout

    (received,) = auth_server.wait_for_messages(1)
    assert received.mail_from == "alice@example.com"
    assert received.rcpt_tos == ("bob@example.com", "carol@example.com", "dave@example.com",
                                 "eve@example.com")
    assert received.auth_user == USER
    message = parse_eml(received.data)
    assert message["From"] == "Alice <alice@example.com>"
    assert message["To"] == "bob@example.com, carol@example.com"
    assert message["Cc"] == "dave@example.com"
    assert message["Subject"] == "Quarterly report ✓"
    assert message["Bcc"] is None and b"eve@example.com" not in received.data
    assert message["Date"] and message["Message-ID"].endswith("@example.com>")
    body = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert body is not None and body.get_content() == "See attached.\r\n"
    assert html is not None and html.get_content() == "<p>See <b>attached</b>.</p>\r\n"
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    assert list(attachments) == ["data.bin", "report.pdf", "notes.txt", "logs.tar.gz"]
    expected_types = ["application/octet-stream", "application/pdf", "text/plain",
                      "application/gzip"]
    for (name, part), kind in zip(attachments.items(), expected_types, strict=True):
        assert part.get_content_type() == kind
        assert part.get_payload(decode=True) == (tmp_path / name).read_bytes()


def test_eml_file_is_sent_as_it_is(
    smtp_server: StartServer, tmp_path: Path
) -> None:
    server = smtp_server()
    eml = tmp_path / "message.eml"
    content = (b"From: a@example.com\r\nTo: b@example.com\r\nBcc: hidden@example.com\r\n"
               b"Subject: raw\r\n\r\n.starts with a dot\r\nbody\r\n")
    eml.write_bytes(content)
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(server.port),
                     "--security", "none", "--eml", str(eml), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == ("b@example.com", "hidden@example.com")
    assert received.data == content.replace(b"Bcc: hidden@example.com\r\n", b"")


def test_settings_from_config_profile_and_environment(
    auth_server: DevServer, certificates: Certificates, tmp_path: Path
) -> None:
    (tmp_path / "mailwire.toml").write_text(f"""
host = "127.0.0.1"
username = "{USER}"
sender = "alice@example.com"
ca_file = "{certificates.ca_file}"

[profiles.dev]
port = {auth_server.port}
security = "starttls"
allowed_mechanisms = ["PLAIN"]
""")
    result = run_cli("send", "--profile", "dev", "--to", "bob@example.com", "--subject", "s",
                     "--body", "b", cwd=tmp_path,
                     env=cli_env(tmp_path, MAILWIRE_PASSWORD=PASSWORD))
    assert result.returncode == 0, result.stderr
    assert "AUTH PLAIN" in result.stdout
    (received,) = auth_server.wait_for_messages(1)
    assert received.mail_from == "alice@example.com"
    assert received.auth_mechanism == "PLAIN"


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_verbose_trace_shows_the_conversation_but_never_the_password(
    auth_server: DevServer, certificates: Certificates, tmp_path: Path, mechanism: str
) -> None:
    result = run_cli("-v", "send", *server_options(auth_server, certificates),
                     "--auth", mechanism, "--from", "alice@example.com", "--to",
                     "bob@example.com", "--body", "hi", cwd=tmp_path,
                     env=cli_env(tmp_path, PW=PASSWORD))
    assert result.returncode == 0, result.stderr
    trace = result.stderr
    assert "C: STARTTLS" in trace and "C: MAIL FROM:<alice@example.com>" in trace
    assert f"C: AUTH {mechanism}" in trace and "<redacted>" in trace
    forms = [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
             base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()]
    for form in forms:
        assert form not in trace
        assert form not in result.stdout


def test_bad_credentials_exit_4(
    auth_server: DevServer, certificates: Certificates, tmp_path: Path
) -> None:
    result = run_cli("send", *server_options(auth_server, certificates), "--from",
                     "alice@example.com", "--to", "bob@example.com", "--body", "hi",
                     cwd=tmp_path, env=cli_env(tmp_path, PW="wrong-password"))
    assert result.returncode == 4
    line = assert_one_error_line(result)
    assert "authentication failed" in line and "535" in line
    assert line.endswith("(password from --password-env PW)")
    assert "wrong-password" not in result.stderr


def test_some_recipients_refused_exit_5_and_names_them(
    auth_server: DevServer, certificates: Certificates, tmp_path: Path
) -> None:
    result = run_cli("send", *server_options(auth_server, certificates), "--from",
                     "alice@example.com", "--to", "bob@example.com", "--to",
                     "nobody@example.com", "--body", "hi", cwd=tmp_path,
                     env=cli_env(tmp_path, PW=PASSWORD))
    assert result.returncode == 5
    assert "accepted  bob@example.com" in result.stdout
    assert "refused   nobody@example.com  550 5.1.1 <nobody@example.com>" in result.stdout
    assert "1 of 2 recipients refused" in result.stderr
    assert auth_server.wait_for_messages(1)[0].rcpt_tos == ("bob@example.com",)


def test_every_recipient_refused_exit_5(
    auth_server: DevServer, certificates: Certificates, tmp_path: Path
) -> None:
    result = run_cli("send", *server_options(auth_server, certificates), "--from",
                     "alice@example.com", "--to", "nobody@example.com", "--cc",
                     "ghost@example.com", "--body", "hi", cwd=tmp_path,
                     env=cli_env(tmp_path, PW=PASSWORD))
    assert result.returncode == 5
    assert "refused   nobody@example.com" in result.stdout
    assert "refused   ghost@example.com" in result.stdout
    assert "all 2 recipient(s) refused" in assert_one_error_line(result)


def test_nothing_listening_exit_3(tmp_path: Path) -> None:
    result = run_cli("send", "--host", "127.0.0.1", "--port", "1", "--from", "a@example.com",
                     "--to", "b@example.com", cwd=tmp_path)
    assert result.returncode == 3
    assert "refused" in assert_one_error_line(result)


def test_untrusted_certificate_exit_3(
    auth_server: DevServer, tmp_path: Path
) -> None:
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(auth_server.port),
                     "--from", "a@example.com", "--to", "b@example.com", cwd=tmp_path)
    assert result.returncode == 3
    assert "failed verification" in assert_one_error_line(result)


def test_skipping_verification_is_loud(
    auth_server: DevServer, tmp_path: Path
) -> None:
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(auth_server.port),
                     "--insecure-skip-verify", "--from", "a@example.com", "--to",
                     "b@example.com", "--body", "x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("mailwire: warning: certificate verification is off")


@pytest.mark.parametrize(("arguments", "expected"), [
    (["--port", "smtp"], "argument --port: expected a port number 1-65535, got 'smtp'"),
    (["--security", "startls"], "unknown security mode 'startls'"),
    (["--auth", "PLIAN"], "unknown authentication mechanism 'PLIAN' (did you mean 'PLAIN'?)"),
    (["--attach", "missing.bin"], "argument --attach: no such file"),
    (["--password", "hunter2"], "there is no --password option"),
    (["--password=hunter2"], "there is no --password option"),
    (["--passw", "hunter2"], "unrecognized arguments: --passw"),
    (["--eml", "message.eml", "--subject", "s"], "--eml sends the file as it is"),
    (["--to", "b@example.com"], "no sender: give --from"),
    (["--from", "a@example.com"], "no recipients: give --to, --cc or --bcc"),
    (["--from", "a@example.com", "--to", "b@example.com"], "no SMTP host configured"),
    (["--from", "a@example.com", "--to", "b@example.com", "--host", "h", "--user", "u"],
     "user 'u' has no password"),
    (["--from", "a@example.com", "--to", "b@example.com", "--host", "h", "--password-env",
      "NOT_SET_ANYWHERE"], "--password-env: the environment variable NOT_SET_ANYWHERE"),
    (["--config", "broken.toml"], "broken.toml:2: port: expected a port number"),
])
def test_usage_and_configuration_errors_exit_2(
    tmp_path: Path, arguments: list[str], expected: str
) -> None:
    (tmp_path / "message.eml").write_bytes(b"From: a@example.com\r\n\r\nx\r\n")
    (tmp_path / "broken.toml").write_text('host = "h"\nport = "x"\n')
    result = run_cli("send", *arguments, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in assert_one_error_line(result)
    assert "hunter2" not in result.stderr


def test_ask_password_prompts(
    auth_server: DevServer, certificates: Certificates, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("MAILWIRE_")]:
        monkeypatch.delenv(name)
    status = app.main(["send", "--host", "127.0.0.1", "--port", str(auth_server.port),
                       "--ca-file", str(certificates.ca_file), "--user", USER,
                       "--ask-password", "--from", "alice@example.com", "--to",
                       "bob@example.com", "--body", "hi"])
    assert status == 0, capsys.readouterr().err
    assert prompts == [f"Password for {USER}@127.0.0.1: "]


def test_installed_script_and_module_entry_point(tmp_path: Path) -> None:
    script = shutil.which("mailwire")
    if script is None:
        pytest.skip("the mailwire script is not on PATH")
    version = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("mailwire ")
    module = run_cli("--version", cwd=tmp_path)
    assert module.stdout == version.stdout


def test_a_short_timeout_bounds_the_greeting_wait_too(tmp_path: Path) -> None:
    """``--timeout 1`` on a host that never greets ends after about 1 s (not the greeting's
    default 10 s), and the error names host:port."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    try:
        began = time.monotonic()
        result = run_cli("send", "--host", "127.0.0.1", "--port", str(port), "--security",
                         "none", "--timeout", "1", "--from", "a@example.com", "--to",
                         "b@example.org", "--body", "x", cwd=tmp_path)
        elapsed = time.monotonic() - began
    finally:
        silent.close()
    assert result.returncode == 3
    assert elapsed < 5
    assert f"127.0.0.1:{port}" in result.stderr and "greeting" in result.stderr
