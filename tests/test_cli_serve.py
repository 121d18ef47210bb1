"""``mailwire serve`` as a subprocess, with ``mailwire send`` (also a subprocess) as its client:
the .eml it captures, the line it prints, TLS with the CA file it announces, AUTH, and how it
stops (``--count``, ``--exit-after``, SIGTERM)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import (
    ServeProcess,
    assert_one_error_line,
    cli_env,
    parse_eml,
    run_cli,
    start_serve,
    stop_serve,
)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    servers: list[ServeProcess] = []
    yield servers
    for serve in servers:
        if serve.process.poll() is None:
            serve.process.kill()
            serve.process.wait(timeout=10)


def serve(started: list[ServeProcess], tmp_path: Path, *args: str,
          env: dict[str, str] | None = None, input: str | None = None) -> ServeProcess:
    process = start_serve("--maildir", str(tmp_path / "mail"), *args, cwd=tmp_path, env=env,
                          input=input)
    started.append(process)
    return process


def test_starttls_and_auth_capture_the_message(
    started: list[ServeProcess], tmp_path: Path
) -> None:
    server = serve(started, tmp_path, "--tls", "starttls", "--user", "dev",
                   "--password-env", "DEV_PASSWORD", "--count", "1",
                   env=cli_env(tmp_path, DEV_PASSWORD="dev-pw"))
    assert server.ca_file is not None and server.ca_file.is_file()
    assert any("AUTH required: user 'dev', password from $DEV_PASSWORD" in line
               for line in server.banner)
    attachment = tmp_path / "photo.png"
    attachment.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(server.port),
                     "--ca-file", str(server.ca_file), "--user", "dev", "--password-env",
                     "DEV_PASSWORD", "--from", "me@example.com", "--to", "you@example.com",
                     "--subject", "captured", "--body", "hello", "--attach", str(attachment),
                     cwd=tmp_path, env=cli_env(tmp_path, DEV_PASSWORD="dev-pw"))
    assert result.returncode == 0, result.stderr
    line = server.wait_for_line(r"^#1 ")
    assert "from=<me@example.com> to=<you@example.com>" in line
    assert "subject='captured'" in line and "tls=TLSv1." in line and "auth=" in line
    assert server.process.wait(timeout=10) == 0, "--count 1 stops by itself"
    (eml,) = (tmp_path / "mail").glob("*.eml")
    assert line.endswith(f"saved={eml.name}")
    message = parse_eml(eml.read_bytes())
    assert message["Subject"] == "captured"
    (part,) = message.iter_attachments()
    assert part.get_content_type() == "image/png"
    assert part.get_payload(decode=True) == attachment.read_bytes()


def test_implicit_tls(started: list[ServeProcess], tmp_path: Path) -> None:
    server = serve(started, tmp_path, "--tls", "implicit", "--count", "1")
    assert "(implicit TLS)" in server.banner[0]
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(server.port),
                     "--security", "ssl_implicit", "--ca-file", str(server.ca_file),
                     "--from", "me@example.com", "--to", "you@example.com", "--body", "x",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SSL_IMPLICIT" in result.stdout
    server.wait_for_line(r"^#1 .*tls=TLSv1\.")
    assert server.process.wait(timeout=10) == 0


def test_plaintext_auth_needs_the_explicit_client_option(
    started: list[ServeProcess], tmp_path: Path
) -> None:
    server = serve(started, tmp_path, "--user", "dev", "--password-env", "PW",
                   env=cli_env(tmp_path, PW="pw"))
    assert any("--allow-plaintext-credentials" in line for line in server.banner)
    common = ["send", "--host", "127.0.0.1", "--port", str(server.port), "--user", "dev",
              "--password-env", "PW", "--from", "me@example.com", "--to", "you@example.com",
              "--body", "x"]
    env = cli_env(tmp_path, PW="pw")
    refused = run_cli(*common, cwd=tmp_path, env=env)
    assert refused.returncode == 3
    assert "unencrypted connection" in refused.stderr
    # the command line names its own option, not the library's attribute
    assert "--allow-plaintext-credentials" in refused.stderr
    assert "allow_plaintext_credentials" not in refused.stderr
    allowed = run_cli(*common, "--allow-plaintext-credentials", cwd=tmp_path, env=env)
    assert allowed.returncode == 0, allowed.stderr
    server.wait_for_line(r"^#1 .*tls=plaintext auth=")


def test_random_password_is_printed_and_works(
    started: list[ServeProcess], tmp_path: Path
) -> None:
    server = serve(started, tmp_path, "--tls", "starttls", "--user", "dev")
    (announced,) = [line for line in server.banner if "AUTH required" in line]
    password = announced.rsplit("password ", 1)[1]
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(server.port), "--ca-file",
                     str(server.ca_file), "--user", "dev", "--password-env", "PW",
                     "--from", "a@example.com", "--to", "b@example.com", "--body", "x",
                     cwd=tmp_path, env=cli_env(tmp_path, PW=password))
    assert result.returncode == 0, result.stderr


def test_exit_after_and_sigterm_stop_cleanly(
    started: list[ServeProcess], tmp_path: Path
) -> None:
    timed = serve(started, tmp_path, "--exit-after", "0.5")
    began = time.monotonic()
    assert timed.process.wait(timeout=10) == 0
    assert time.monotonic() - began < 5
    timed.wait_for_line(r"stopped after 0 message\(s\)")
    terminated = serve(started, tmp_path)
    assert stop_serve(terminated) == 0


def test_kept_certificates_are_reused(started: list[ServeProcess], tmp_path: Path) -> None:
    first = serve(started, tmp_path, "--tls", "starttls", "--cert-dir", str(tmp_path / "tls"))
    stop_serve(first)
    ca = (tmp_path / "tls" / "ca.pem").read_bytes()
    second = serve(started, tmp_path, "--tls", "starttls", "--cert-dir", str(tmp_path / "tls"))
    assert second.ca_file == tmp_path / "tls" / "ca.pem"
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(second.port), "--ca-file",
                     str(second.ca_file), "--from", "a@example.com", "--to", "b@example.com",
                     "--body", "x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tls" / "ca.pem").read_bytes() == ca


def test_port_in_use_is_a_clear_error(started: list[ServeProcess], tmp_path: Path) -> None:
    first = serve(started, tmp_path)
    result = run_cli("serve", "--port", str(first.port), "--maildir", str(tmp_path / "m2"),
                     cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"mailwire: error: cannot listen on 127.0.0.1:{first.port}")


@pytest.mark.parametrize("option", [["--password", "hunter2"], ["--password=hunter2"]])
def test_a_password_on_the_command_line_is_refused(tmp_path: Path, option: list[str]) -> None:
    """It would show in ``ps`` (SECURITY.md, "The development server and passwords on the
    command line")."""
    result = run_cli("serve", "--user", "dev", *option, cwd=tmp_path)
    assert result.returncode == 2
    line = assert_one_error_line(result)
    assert "there is no --password option" in line and "--ask-password" in line
    assert "hunter2" not in result.stderr


def test_ask_password_reads_a_piped_line(started: list[ServeProcess], tmp_path: Path) -> None:
    server = serve(started, tmp_path, "--user", "dev", "--ask-password", input="piped-pw\n")
    assert any("AUTH required: user 'dev', the password entered" in line
               for line in server.banner)
    assert not any("piped-pw" in line for line in server.banner)
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(server.port), "--user", "dev",
                     "--ask-password", "--allow-plaintext-credentials", "--from",
                     "a@example.com", "--to", "b@example.com", "--body", "x", cwd=tmp_path,
                     input="piped-pw\n")
    assert result.returncode == 0, result.stderr
    assert "echo" not in result.stderr.lower()
    server.wait_for_line(r"^#1 .*auth=.*:dev")


def test_the_suggested_command_for_implicit_tls_works_at_once(
    started: list[ServeProcess], tmp_path: Path
) -> None:
    """Without --security ssl_implicit, AUTO first waited the 10 s greeting timeout."""
    server = serve(started, tmp_path, "--tls", "implicit", "--count", "1")
    (suggested,) = [line.split("try: ", 1)[1] for line in server.banner if "try: " in line]
    arguments = suggested.split()
    assert arguments[:2] == ["mailwire", "send"] and "--security" in arguments
    assert arguments[arguments.index("--security") + 1] == "ssl_implicit"
    began = time.monotonic()
    result = run_cli(*arguments[1:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 5
    server.wait_for_line(r"^#1 .*tls=TLSv1\.")


def test_client_mistakes_do_not_reach_the_servers_standard_error(tmp_path: Path) -> None:
    """aiosmtpd logs an unknown command as a warning; with no handler of its own, Python
    printed it on the standard error of the program running the development server."""
    code = (
        "import socket\n"
        "from mailwire.devserver import DevServer\n"
        "with DevServer() as server:\n"
        "    with socket.create_connection(server.address) as sock:\n"
        "        sock.recv(1000)\n"
        "        sock.sendall(b'BOGUS command\\r\\n')\n"
        "        assert sock.recv(1000).startswith(b'500')\n"
        "print('done')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, check=False, env=cli_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert result.stderr == ""
