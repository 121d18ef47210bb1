"""mailwire's Django email backend with the real Django package, against a real server.

Each Django version runs a small project in a subprocess (``tests/support/django_app``):
Django 6.1 with ``MAILERS`` (Python 3.12+) and Django 5.2 LTS with the classic ``EMAIL_*``
settings (this interpreter). The server is mailwire's development server with STARTTLS and
AUTH; the test checks what it received, message by message, and that Django's test runner still
swaps in the locmem backend.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailwire.devserver import Certificates, DevServer, ReceivedMessage, TlsMode
from tests.support.django_envs import ROOT
from tests.support.pooling import PASSWORD, USER

REFUSED = "refused@example.org"


def _run_scenario(python: str, spec: dict[str, Any]) -> dict[str, Any]:
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("MAILWIRE_", "DJANGO_"))}
    environment |= {"TEST_DJANGO_SCENARIO": json.dumps(spec), "PYTHONPATH":
                    f"{ROOT / 'src'}{os.pathsep}{ROOT}", "PYTHONWARNINGS": "ignore"}
    finished = subprocess.run([python, "-m", "tests.support.django_app.scenario"], cwd=ROOT,
                              env=environment, capture_output=True, text=True, timeout=120)
    lines = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
    assert finished.returncode == 0 and lines, finished.stdout + finished.stderr
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    result["stderr"] = finished.stderr
    return result


def _by_subject(received: list[ReceivedMessage]) -> dict[str, tuple[ReceivedMessage,
                                                                    EmailMessage]]:
    parsed = {}
    for message in received:
        email = message_from_bytes(message.data, policy=policy.default)
        assert isinstance(email, EmailMessage)
        parsed[str(email["Subject"])] = (message, email)
    return parsed


@pytest.mark.parametrize("version, mode", [("6.1", "mailers"), ("5.2", "classic")])
def test_django_sends_through_mailwire(
    version: str, mode: str, django_python: Callable[[str], str],
    smtp_server: Callable[..., DevServer], certificates: Certificates, tmp_path: Path,
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS, credentials={USER: PASSWORD},
                         require_starttls=True, refuse_recipients=[REFUSED])
    config = tmp_path / "mailwire.toml"
    config.write_text(f'[profiles.django]\nhost = "127.0.0.1"\nport = {server.port}\n'
                      f'username = "{USER}"\npassword_env = "TEST_SMTP_PASSWORD_FOR_DJANGO"\n'
                      f'security = "ssl_explicit"\nca_file = "{certificates.ca_file}"\n')
    spec = {"mode": mode, "port": server.port, "user": USER, "password": PASSWORD,
            "ca_file": str(certificates.ca_file), "refused": REFUSED, "config": str(config)}
    os.environ["TEST_SMTP_PASSWORD_FOR_DJANGO"] = PASSWORD
    try:
        result = _run_scenario(django_python(version), spec)
    finally:
        del os.environ["TEST_SMTP_PASSWORD_FOR_DJANGO"]

    assert result["django"].startswith(version)
    assert (result["send_mail"], result["send_mass_mail"], result["multi"]) == (1, 3, 1)
    assert result["open"] == [True, False] and result["held"] == 2
    assert (result["context"], result["empty"], result["fail_silently"]) == (1, 0, 0)
    assert result["refused_error"] == "mailwire.errors.RecipientsRefusedError"
    assert REFUSED in result["refused_text"] and PASSWORD not in result["refused_text"]
    assert result["locmem_failures"] == 0
    assert PASSWORD not in result["stderr"]

    expected = 10 if mode == "mailers" else 9
    received = server.wait_for_messages(expected)
    assert len(received) == expected, [message.rcpt_tos for message in received]
    assert {(message.auth_user, message.tls_version is not None) for message in received} == {
        (USER, True)}
    messages = _by_subject(received)
    assert "Under test" not in messages

    envelope, plain = messages["Plain"]
    assert envelope.mail_from == "webapp@example.com"
    assert envelope.rcpt_tos == ("alice@example.org",)
    assert plain.get_content().strip() == "Plain body."
    assert [messages[f"Mass {n}"][0].rcpt_tos for n in range(3)] == [
        (f"mass{n}@example.org",) for n in range(3)]

    envelope, rich = messages["Rich"]
    assert envelope.mail_from == "sender@example.com"
    assert set(envelope.rcpt_tos) == {"bob@example.org", "hidden@example.org"}
    assert "Bcc" not in rich and "hidden@example.org" not in envelope.data.decode()
    assert str(rich["From"]) == "Sender Name <sender@example.com>"
    html = rich.get_body(("html",))
    assert html is not None and "<b>HTML</b>" in html.get_content()
    attachments = {part.get_filename(): part.get_content() for part in rich.iter_attachments()}
    assert attachments["report.csv"].replace("\r\n", "\n") == "a,b\n1,2\n"
    assert attachments["blob.bin"] == bytes(range(256))

    envelope, admins = messages["[Django] Admin alert"]
    assert set(envelope.rcpt_tos) == {"admin1@example.org", "admin2@example.org"}
    assert envelope.mail_from == "server@example.com"
    assert admins.get_body(("html",)) is not None

    default_mailer = [message for message in received if "Relayed" not in message.data.decode()]
    assert len({message.peer for message in default_mailer}) == 1, "not one pooled connection"
    if mode == "mailers":
        relayed, _ = messages["Relayed"]
        assert relayed.rcpt_tos == ("relayed@example.org",)
