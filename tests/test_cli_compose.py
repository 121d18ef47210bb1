"""What ``mailwire send`` composes: HTML-only bodies, attachments streamed in bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwire.cli.compose import BASE64_BLOCK, compose
from tests.support.cli import cli_env, parse_eml
from tests.support.sinks import RunningSink

ATTACHMENT_MIB = 100
MEMORY_BOUND_MIB = 60


def composed(chunks: Iterator[bytes]) -> bytes:
    return b"".join(chunks)


def base(**options: object) -> dict[str, object]:
    values: dict[str, object] = {"sender": "Alice <alice@example.com>", "to": ["b@example.org"],
                                 "cc": [], "subject": "s", "body": None, "html": None,
                                 "attachments": []}
    values.update(options)
    return values


def test_html_without_a_body_is_sent_as_html_only() -> None:
    message = parse_eml(composed(compose(**base(html="<p>hi</p>"))))  # type: ignore[arg-type]
    assert message.get_content_type() == "text/html"
    assert message.get_content() == "<p>hi</p>\r\n"


def test_html_with_a_body_is_an_alternative() -> None:
    message = parse_eml(composed(compose(**base(body="hi", html="<p>hi</p>"))))  # type: ignore[arg-type]
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and plain.get_content() == "hi\r\n"
    assert html is not None and html.get_content() == "<p>hi</p>\r\n"


def test_html_only_with_attachments(tmp_path: Path) -> None:
    attachment = tmp_path / "a.bin"
    attachment.write_bytes(b"\x00\x01")
    message = parse_eml(composed(compose(**base(html="<p>hi</p>",  # type: ignore[arg-type]
                                                attachments=[attachment]))))
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)) is None
    html = message.get_body(("html",))
    assert html is not None and html.get_content() == "<p>hi</p>\r\n"


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, BASE64_BLOCK - 1, BASE64_BLOCK,
                                  BASE64_BLOCK + 1, 3 * BASE64_BLOCK + 100])
def test_attachments_arrive_intact_whatever_their_size(tmp_path: Path, size: int) -> None:
    data = (bytes(range(256)) * (size // 256 + 1))[:size]
    first, second = tmp_path / "first.bin", tmp_path / "zweite Datei ü.txt"
    first.write_bytes(data)
    second.write_bytes(b"line\r\n.\r\nmore")
    raw = composed(compose(**base(body="see attached", attachments=[first, second])))  # type: ignore[arg-type]
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = parse_eml(raw)
    assert message["Message-ID"].endswith("@example.com>") and message["Date"]
    parts = list(message.iter_attachments())
    assert [part.get_filename() for part in parts] == ["first.bin", "zweite Datei ü.txt"]
    assert parts[0].get_payload(decode=True) == data
    assert parts[1].get_payload(decode=True) == b"line\r\n.\r\nmore"
    body = message.get_body(("plain",))
    assert body is not None and body.get_content() == "see attached\r\n"


def test_attachments_are_read_only_as_the_message_is_sent(tmp_path: Path) -> None:
    attachment = tmp_path / "a.bin"
    attachment.write_bytes(b"x" * 10)
    chunks = compose(**base(body="b", attachments=[attachment]))  # type: ignore[arg-type]
    attachment.write_bytes(b"y" * 10)  # changed after composing, before sending
    assert b"eXl5eXl5eXl5eQ==" in composed(chunks)  # base64 of the new content


def test_an_unreadable_attachment_is_refused_before_sending(tmp_path: Path) -> None:
    from mailwire.errors import SmtpUsageError

    with pytest.raises(SmtpUsageError, match="cannot read the attachment"):
        compose(**base(attachments=[tmp_path / "missing.pdf"]))  # type: ignore[arg-type]


SENDER = r'''
import json, resource, sys
from mailwire.cli import main

host, port, path = sys.argv[1:4]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(["send", "--host", host, "--port", port, "--security", "none",
             "--from", "a@example.com", "--to", "b@example.org", "--subject", "big",
             "--body", "attached", "--attach", path])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "before_kib": before, "after_kib": after}))
'''


def test_a_large_attachment_is_sent_in_bounded_memory(
    smtp_sink: RunningSink, tmp_path: Path
) -> None:
    attachment = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    with attachment.open("wb") as handle:
        for _ in range(ATTACHMENT_MIB):
            handle.write(block)
    env = cli_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    completed = subprocess.run(
        [sys.executable, "-c", SENDER, smtp_sink.host, str(smtp_sink.port), str(attachment)],
        capture_output=True, timeout=300, check=False, cwd=tmp_path, env=env,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    report = json.loads(completed.stdout.splitlines()[-1])
    assert report["code"] == 0
    grown_mib = (report["after_kib"] - report["before_kib"]) / 1024
    assert grown_mib < MEMORY_BOUND_MIB, f"peak memory grew by {grown_mib:.0f} MiB"
