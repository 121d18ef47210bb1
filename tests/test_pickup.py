"""Delivery to a pickup directory (Aspose's SPECIFIED_PICKUP_DIRECTORY), and the callbacks of
``send_many`` (Aspose's SucceededSending / FailedSending)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailwire import (
    BulkResult,
    MessageError,
    Outgoing,
    SmtpClient,
    SmtpDeliveryMethod,
    SmtpUsageError,
)
from mailwire.devserver import DevServer
from tests.support.cli import run_cli
from tests.support.clients import ClientFactory

RAW = (b"From: a@example.com\nTo: b@example.org\nBcc: hidden@example.org\nSubject: pick me\n"
       b"\n.leading dot\nbare LF\rbare CR\n")


def pickup_client(make_client: ClientFactory, directory: Path) -> object:
    return make_client("nowhere.invalid", 25,
                       delivery_method=SmtpDeliveryMethod.SPECIFIED_PICKUP_DIRECTORY,
                       pickup_directory_location=directory)


def eml_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))


def test_a_message_is_written_whole_with_its_envelope(make_client: ClientFactory,
                                                      tmp_path: Path) -> None:
    client = pickup_client(make_client, tmp_path)
    result = client.send(RAW)  # type: ignore[attr-defined]
    assert result.accepted == ("b@example.org", "hidden@example.org")
    assert result.reply.code == 250 and ".eml" in result.reply.text
    (written,) = eml_files(tmp_path)
    assert list(tmp_path.iterdir()) == [written], "no temporary file is left behind"
    assert written.read_bytes() == (
        b"X-Sender: a@example.com\r\nX-Receiver: b@example.org\r\n"
        b"X-Receiver: hidden@example.org\r\n"
        b"From: a@example.com\r\nTo: b@example.org\r\nSubject: pick me\r\n"
        b"\r\n.leading dot\r\nbare LF\r\nbare CR\r\n")


def test_nothing_is_sent_over_the_network(tmp_path: Path) -> None:
    client = SmtpClient("nowhere.invalid", 25, delivery_method="specified_pickup_directory",
                        pickup_directory_location=tmp_path)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.org", "x"
    message.set_content("body")
    client.send(message)
    assert not client.is_connected
    content = eml_files(tmp_path)[0].read_bytes()
    assert b"Message-ID:" in content and b"Date:" in content


def test_send_many_writes_one_file_per_message_with_callbacks(make_client: ClientFactory,
                                                               tmp_path: Path) -> None:
    client = pickup_client(make_client, tmp_path)
    sent: list[BulkResult] = []
    failed: list[BulkResult] = []
    messages = [RAW, Outgoing(RAW, "x@example.com", ["y@example.org"]),
                b"From: a@example.com\r\n\r\nno recipients\r\n"]
    results = client.send_many(messages, on_sent=sent.append,  # type: ignore[attr-defined]
                               on_failed=failed.append)
    assert [result.sent for result in results] == [True, True, False]
    assert [result.index for result in sent] == [0, 1]
    assert [result.index for result in failed] == [2]
    assert isinstance(failed[0].error, MessageError)
    assert len(eml_files(tmp_path)) == 2


def test_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    client = SmtpClient("h.invalid", 25, delivery_method="specified_pickup_directory",
                        pickup_directory_location=tmp_path / "absent")
    with pytest.raises(SmtpUsageError, match="does not exist"):
        client.send(RAW)
    client.pickup_directory_location = None
    with pytest.raises(SmtpUsageError, match="pickup_directory_location"):
        client.send(RAW)


def test_a_failing_stream_leaves_no_file(tmp_path: Path) -> None:
    def chunks() -> object:
        yield b"From: a@example.com\r\nTo: b@example.org\r\n\r\nfirst part\r\n"
        raise OSError("disk went away")

    client = SmtpClient("h.invalid", 25, delivery_method="specified_pickup_directory",
                        pickup_directory_location=tmp_path)
    with pytest.raises((MessageError, OSError)):
        client.send(chunks())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_an_existing_link_is_never_followed(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are created exclusively: a link planted under the next name is not written
    through (the name is random; here it is made predictable to plant the link)."""
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep me")
    (tmp_path / ".0123.tmp").symlink_to(target)
    monkeypatch.setattr("mailwire.pickup.secrets.token_hex", lambda _n: "0123")
    client = SmtpClient("h.invalid", 25, delivery_method="specified_pickup_directory",
                        pickup_directory_location=tmp_path)
    with pytest.raises(SmtpUsageError):
        client.send(RAW)
    assert target.read_bytes() == b"keep me"


def test_the_file_mode_follows_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        SmtpClient("h.invalid", 25, delivery_method="specified_pickup_directory",
                   pickup_directory_location=tmp_path).send(RAW)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(eml_files(tmp_path)[0].stat().st_mode) == 0o640


def test_callbacks_on_the_network(smtp_server: Callable[..., DevServer],
                                  make_client: ClientFactory) -> None:
    server = smtp_server(refuse_recipients=["refused@example.org"])
    client = make_client(server.host, server.port, security="none")
    sent: list[int] = []
    failed: list[int] = []
    messages = [RAW, Outgoing(RAW, "a@example.com", ["refused@example.org"]), RAW]
    results = client.send_many(messages, on_sent=lambda r: sent.append(r.index),
                               on_failed=lambda r: failed.append(r.index))
    client.quit()
    assert [r.sent for r in results] == [True, False, True]
    assert (sent, failed) == ([0, 2], [1])


def test_the_command_line_writes_to_a_pickup_directory(tmp_path: Path) -> None:
    folder = tmp_path / "pickup"
    folder.mkdir()
    result = run_cli("send", "--host", "nowhere.invalid", "--delivery-method",
                     "specified_pickup_directory", "--pickup-dir", str(folder),
                     "--from", "a@example.com", "--to", "b@example.org", "--subject", "cli",
                     "--body", "hello", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (written,) = eml_files(folder)
    assert b"Subject: cli" in written.read_bytes()
