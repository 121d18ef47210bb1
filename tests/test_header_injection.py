"""No header value becomes a header line of its own: CR/LF are refused, also once decoded.

The stdlib email generator wrote the decoded text of an encoded word such as
``=?utf-8?q?hi=0D=0AX-Injected=3A_y?=`` as header lines in Python before 3.13 (the
CVE-2024-6923 class); mailwire refuses such values before writing, on every Python it supports
(SECURITY.md, "Command and header injection" and "Input the user did not choose"). Run this
file under each installed Python: 3.11, 3.12 and 3.13.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import EmailMessage, Message
from pathlib import Path

import pytest

from mailwire import SecurityOptions, SmtpClient
from mailwire.devserver import DevServer
from mailwire.errors import MessageError, SmtpUsageError
from mailwire.message import prepare, simple_message
from mailwire.message.email_objects import check_written_fields
from tests.support.cli import assert_one_error_line, run_cli

INJECTING_WORDS = [
    "=?utf-8?q?hi=0D=0AX-Injected=3A_y?=",
    "=?UTF-8?Q?hi=0AX-Injected:_y?=",
    "=?utf-8?b?aGkNClgtSW5qZWN0ZWQ6IHk=?=",  # base64 of "hi\r\nX-Injected: y"
    "=?iso-8859-1?q?hi=0DX-Injected:_y?=",
    "prefix =?utf-8?q?=0D=0AX-Injected:_y?= suffix",
    "=?utf-16-le?b?aAAKAFgALQBJAG4AagBlAGMAdABlAGQAOgAgAHkA?=",  # UTF-16: "h\nX-Injected: y"
]


def sent_bytes(message: Message) -> bytes:
    return b"".join(prepare(message).chunks)


@pytest.mark.parametrize("subject", INJECTING_WORDS)
def test_simple_message_refuses_an_encoded_line_break(subject: str) -> None:
    with pytest.raises(SmtpUsageError, match="Subject header's value holds a line break"):
        simple_message("a@example.com", ["b@example.com"], subject, "body", None)


@pytest.mark.parametrize("subject", ["hi\r\nX-Injected: y", "hi\rX-Injected: y",
                                     "hi\nX-Injected: y"])
def test_simple_message_refuses_a_raw_line_break_with_mailwires_own_error(subject: str) -> None:
    with pytest.raises(SmtpUsageError, match="Subject"):
        simple_message("a@example.com", ["b@example.com"], subject, "body", None)


def test_send_mail_refuses_before_connecting(
    server_pool: Callable[..., DevServer]
) -> None:
    server = server_pool()
    client = SmtpClient(server.host, server.port, security=SecurityOptions.NONE, timeout=5.0)
    with client, pytest.raises(SmtpUsageError, match="line break"):
        client.send_mail("a@example.com", "b@example.com", INJECTING_WORDS[0], "body")
    assert server.messages == []


@pytest.mark.parametrize("value", INJECTING_WORDS)
def test_email_message_with_an_encoded_line_break_is_refused(value: str) -> None:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "b@example.com"
    message["Subject"] = value
    message.set_content("body")
    with pytest.raises(MessageError, match="Subject header's value holds a line break"):
        prepare(message)


@pytest.mark.parametrize("policy", [email.policy.default, email.policy.compat32],
                         ids=["default", "compat32"])
def test_parsed_message_whose_long_subject_would_be_refolded_is_refused(
    policy: email.policy.Policy
) -> None:
    # Longer than a line: the generator refolds it from its decoded text.
    raw = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: " + b"x" * 80
           + b" =?utf-8?q?hi=0D=0AX-Injected=3A_y?=\r\n\r\nbody\r\n")
    message = email.message_from_bytes(raw, policy=policy)
    with pytest.raises(MessageError, match="line break"):
        prepare(message)


@pytest.mark.parametrize("separator", ["\r", "\n", "\x0c", "\x0b", "\x1c", "\x85", "\u2028"])
def test_compat32_raw_values_with_line_breaks_are_refused(separator: str) -> None:
    message = Message()
    message["From"] = "a@example.com"
    message["To"] = "b@example.com"
    message["Subject"] = f"hi{separator}Bcc: secret@hidden.example"
    message.set_payload("body\n")
    with pytest.raises(MessageError, match="line break"):
        prepare(message)


def test_folding_in_raw_values_is_not_a_line_break() -> None:
    message = email.message_from_bytes(
        b"From: a@example.com\r\nTo: b@example.com,\r\n c@example.com\r\nSubject: one\r\n"
        b"\ttwo\r\n\r\nbody\r\n")
    prepared = prepare(message)
    assert [r.text for r in prepared.recipients] == ["b@example.com", "c@example.com"]


def test_an_attachment_part_header_is_checked_too() -> None:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "b@example.com"
    message.set_content("body")
    message.add_attachment(b"data", maintype="application", subtype="octet-stream",
                           filename="a.bin")
    part = next(iter(message.iter_attachments()))
    part["X-Note"] = "=?utf-8?q?ok=0D=0AContent-Type=3A_text/html?="
    with pytest.raises(MessageError, match="X-Note header's value holds a line break"):
        prepare(message)


@pytest.mark.parametrize("name", ["X-Bad\r\nBcc", "X Bad", "X:Bad", ""])
def test_invalid_header_names_are_refused(name: str) -> None:
    message = Message()
    message["From"] = "a@example.com"
    message["To"] = "b@example.com"
    message[name] = "value"
    with pytest.raises(MessageError, match="not a valid field name"):
        prepare(message)


def test_decoded_values_without_line_breaks_are_sent() -> None:
    message = EmailMessage()
    message["From"] = "=?utf-8?q?J=C3=B6rg?= <joerg@example.com>"
    message["To"] = "b@example.com"
    message["Subject"] = "=?utf-8?q?Gr=C3=BC=C3=9Fe?= and plain text"
    message.set_content("body")
    sent = sent_bytes(message)
    assert b"Subject: " in sent and b"X-Injected" not in sent


def test_fields_the_writer_adds_are_refused_by_the_second_check() -> None:
    # The comparison of written fields with the object's is a second line of defence for
    # whatever the email package may do; Content-Transfer-Encoding is the one it may add.
    check_written_fields(["from", "to", "content-transfer-encoding"], ["from", "to"])
    with pytest.raises(MessageError, match="x-injected"):
        check_written_fields(["from", "to", "x-injected"], ["from", "to"])
    with pytest.raises(MessageError, match="bcc"):
        check_written_fields(["from", "bcc", "bcc"], ["from", "bcc"])


def test_the_second_check_holds_when_the_first_is_bypassed(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mailwire.message.email_objects.check_header_values",
                        lambda message: None)
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "b@example.com"
    message["Subject"] = "=?utf-8?q?hi=0D=0ABcc=3A_secret@hidden.example?="
    message.set_content("body")
    try:
        sent = sent_bytes(message)
    except MessageError as error:
        assert "bcc" in str(error)  # Python < 3.13 writes the line; the comparison stops it
        return
    assert b"\r\nBcc:" not in sent  # Python >= 3.13 encodes the value instead


@pytest.mark.parametrize("subject", [INJECTING_WORDS[0], INJECTING_WORDS[2]])
def test_cli_subject_with_an_encoded_line_break_is_refused(
    subject: str, smtp_server: Callable[..., DevServer], tmp_path: Path
) -> None:
    server = smtp_server()
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(server.port),
                     "--security", "none", "--from", "a@example.com", "--to", "b@example.com",
                     "--subject", subject, "--body", "hi", cwd=tmp_path)
    assert result.returncode == 2
    assert "Subject header's value holds a line break" in assert_one_error_line(result)
    assert server.messages == []


def test_cli_attachment_name_with_a_line_break_is_refused(
    smtp_server: Callable[..., DevServer], tmp_path: Path
) -> None:
    server = smtp_server()
    attachment = tmp_path / "a\nX-Injected: y.txt"
    attachment.write_bytes(b"data")
    result = run_cli("send", "--host", "127.0.0.1", "--port", str(server.port),
                     "--security", "none", "--from", "a@example.com", "--to", "b@example.com",
                     "--body", "hi", "--attach", str(attachment), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result)
    assert server.messages == []
