"""``mailwire send-many`` run as a subprocess against development servers: files arrive byte for
byte, failures are named by path, the summary and JSON report, paths from standard input,
progress only on a terminal, and the exit statuses."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire.devserver import Certificates, DevServer, ReceivedMessage, TlsMode
from tests.support.cli import COMMAND, assert_one_error_line, cli_env, parse_eml, run_cli

StartServer = Callable[..., DevServer]
PASSWORD = "Corr3ct-h0rse-battery"
USER = "alice"
REFUSED = "nobody@example.com"



TIMING = re.compile(r"; \d+\.\d s(, \d+\.\d messages/s)?$", re.MULTILINE)


def untimed(text: str) -> str:
    """The summary without its elapsed time and rate, which vary from run to run."""
    return TIMING.sub("", text)

def plain(server: DevServer) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(server.port), "--security", "none"]


def eml(number: int, *, to: str = "bob@example.com", bcc: str | None = None) -> bytes:
    """A message with headers as a person would write them, and a body that needs dot-stuffing.
    """
    headers = [f"From: Sender {number} <sender{number}@example.com>", f"To: {to}"]
    if bcc is not None:
        headers.append(f"Bcc: {bcc}")
    headers += [f"Subject: message {number:02d}", "X-Custom:   kept   as written",
                f"Message-ID: <{number}@example.com>"]
    body = [f"Body of message {number}.", ".a line starting with a dot", ".", "", "end"]
    return ("\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(body) + "\r\n").encode()


def write_messages(folder: Path, count: int, **options: str) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for number in range(count):
        path = folder / f"{number:02d}.eml"
        path.write_bytes(eml(number, **options))
        paths.append(path)
    return paths


def by_subject(messages: list[ReceivedMessage]) -> dict[str, ReceivedMessage]:
    return {str(parse_eml(message.data)["Subject"]): message for message in messages}


def run_with_stdin(*args: str, cwd: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], cwd=cwd, env=cli_env(cwd), input=stdin,
                          capture_output=True, text=True, timeout=30, check=False)


def test_folder_over_two_connections_arrives_byte_for_byte(
    smtp_server: StartServer, tmp_path: Path
) -> None:
    server = smtp_server()
    folder = tmp_path / "outbox"
    folder.mkdir()
    expected: dict[str, tuple[bytes, tuple[str, ...]]] = {}
    for number in range(20):
        bcc = f"hidden{number}@example.com" if number % 3 == 0 else None
        content = eml(number, to=f"rcpt{number}@example.com, other@example.com", bcc=bcc)
        (folder / f"{number:02d}.eml").write_bytes(content)
        recipients = (f"rcpt{number}@example.com", "other@example.com", *([bcc] if bcc else []))
        stripped = content.replace(f"Bcc: {bcc}\r\n".encode(), b"") if bcc else content
        expected[f"message {number:02d}"] = (stripped, recipients)
    (folder / "notes.txt").write_text("not a message")
    (folder / "sub.eml").mkdir()

    result = run_cli("send-many", *plain(server), "--connections", "2", "outbox", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert untimed(result.stdout) == "sent 20 of 20; failed 0; unknown 0\n"
    received = by_subject(server.wait_for_messages(20))
    assert len(server.messages) == 20 and received.keys() == expected.keys()
    for subject, (data, recipients) in expected.items():
        message = received[subject]
        assert message.data == data, subject
        assert message.rcpt_tos == recipients
        assert message.mail_from == f"sender{int(subject[-2:])}@example.com"
    assert len({message.peer for message in received.values()}) == 2


def test_refused_recipients_exit_5_and_name_the_files(
    smtp_server: StartServer, tmp_path: Path
) -> None:
    server = smtp_server(refuse_recipients=[REFUSED])
    good, refused, partly = (tmp_path / name for name in ("good.eml", "refused.eml",
                                                          "partly.eml"))
    good.write_bytes(eml(1))
    refused.write_bytes(eml(2, to=REFUSED))
    partly.write_bytes(eml(3, to=f"carol@example.com, {REFUSED}"))

    result = run_cli("send-many", *plain(server), "good.eml", "refused.eml", "partly.eml",
                     cwd=tmp_path)

    assert result.returncode == 5, result.stderr
    assert result.stderr == ""
    lines = untimed(result.stdout).splitlines()
    assert lines[0].startswith("refused.eml: all 1 recipient(s) refused: 550 5.1.1 <nobody@")
    assert lines[1].startswith(f"partly.eml: 1 of 2 recipients refused, sent to the others: "
                               f"{REFUSED} 550 5.1.1")
    assert lines[2:] == ["sent 2 of 3; failed 1; unknown 0; partly refused 1"]
    received = by_subject(server.wait_for_messages(2))
    assert set(received) == {"message 01", "message 03"}
    assert received["message 03"].rcpt_tos == ("carol@example.com",)


def test_paths_from_stdin_with_envelope_override(
    smtp_server: StartServer, tmp_path: Path
) -> None:
    server = smtp_server()
    paths = write_messages(tmp_path / "a", 3, bcc="hidden@example.com")
    write_messages(tmp_path / "b", 2)
    listing = f"{paths[2]}\n\n{paths[0].name}\r\nb\n"  # absolute, relative, CRLF, a directory

    result = run_with_stdin("send-many", *plain(server), "--from", "Bulk <bulk@example.com>",
                            "--to", "x@example.com", "--to", "y@example.com", "-",
                            cwd=tmp_path / "a", stdin=listing.replace("\nb\n",
                                                                      f"\n{tmp_path / 'b'}\n"))

    assert result.returncode == 0, result.stderr
    assert untimed(result.stdout) == "sent 4 of 4; failed 0; unknown 0\n"
    received = server.wait_for_messages(4)
    assert [parse_eml(message.data)["Message-ID"] for message in received] == [
        "<2@example.com>", "<0@example.com>", "<0@example.com>", "<1@example.com>"]
    for message in received:
        assert message.mail_from == "bulk@example.com"
        assert message.rcpt_tos == ("x@example.com", "y@example.com")
        assert b"hidden@example.com" not in message.data
    assert received[0].data == paths[2].read_bytes().replace(b"Bcc: hidden@example.com\r\n", b"")


def test_missing_file_in_stdin_list_is_a_failed_message(
    smtp_server: StartServer, tmp_path: Path
) -> None:
    server = smtp_server()
    write_messages(tmp_path, 1)
    result = run_with_stdin("send-many", *plain(server), "-", cwd=tmp_path,
                            stdin="missing.eml\n00.eml\n")
    assert result.returncode == 5, result.stderr
    assert untimed(result.stdout).splitlines() == [
        "missing.eml: cannot read message file 'missing.eml': No such file or directory",
        "sent 1 of 2; failed 1; unknown 0"]
    assert len(server.wait_for_messages(1)) == 1


def test_json_report(smtp_server: StartServer, tmp_path: Path) -> None:
    server = smtp_server(refuse_recipients=[REFUSED])
    folder = tmp_path / "outbox"
    write_messages(folder, 3)
    (folder / "01.eml").write_bytes(eml(1, to=REFUSED))
    (folder / "02.eml").write_bytes(eml(2, to=f"carol@example.com, {REFUSED}"))

    result = run_cli("send-many", *plain(server), "--json", "--connections", "2", "outbox",
                     cwd=tmp_path)

    assert result.returncode == 5, result.stderr
    assert result.stderr == ""
    *records, summary = [json.loads(line) for line in result.stdout.splitlines()]
    elapsed = summary["summary"].pop("elapsed_seconds")
    rate = summary["summary"].pop("messages_per_second")
    assert elapsed > 0 and rate == pytest.approx(2 / elapsed, rel=0.05, abs=0.1)
    assert summary == {"summary": {"total": 3, "sent": 2, "partly_refused": 1, "failed": 1,
                                   "unknown": 0, "not_attempted": 0, "stopped": None,
                                   "interrupted": False}}
    by_path = {record["path"]: record for record in records}
    assert sorted(by_path) == ["outbox/00.eml", "outbox/01.eml", "outbox/02.eml"]
    sent, failed, partly = (by_path[f"outbox/0{number}.eml"] for number in range(3))
    reply_550 = {"code": 550, "enhanced_code": "5.1.1",
                 "text": f"5.1.1 <{REFUSED}>: Recipient address rejected: User unknown"}
    assert sent == {"path": "outbox/00.eml", "index": 0, "status": "sent", "attempts": 1,
                    "sender": "sender0@example.com", "accepted": ["bob@example.com"],
                    "refused": {}, "reply": {"code": 250, "enhanced_code": None, "text": "OK"},
                    "error": None, "error_type": None, "error_reply": None}
    assert failed["status"] == "failed" and failed["index"] == 1
    assert failed["error_type"] == "RecipientsRefusedError"
    assert failed["error"].startswith("all 1 recipient(s) refused: 550 5.1.1")
    assert failed["refused"] == {REFUSED: reply_550} and failed["error_reply"] == reply_550
    assert failed["accepted"] == [] and failed["reply"] is None
    assert partly["status"] == "partly_refused"
    assert partly["accepted"] == ["carol@example.com"]
    assert partly["refused"] == {REFUSED: reply_550}


def test_progress_only_on_a_terminal(smtp_server: StartServer, tmp_path: Path) -> None:
    server = smtp_server()
    write_messages(tmp_path / "outbox", 6)
    piped = run_cli("send-many", *plain(server), "--rate-limit", "20", "outbox", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    assert untimed(piped.stdout) == "sent 6 of 6; failed 0; unknown 0\n"

    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [*COMMAND, "send-many", *plain(server), "--rate-limit", "20", "outbox"],
            cwd=tmp_path, env=cli_env(tmp_path, TERM="xterm"), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        drawn = _read_all(controller)
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        assert process.wait(timeout=30) == 0
    finally:
        os.close(controller)
    assert untimed(stdout) == "sent 6 of 6; failed 0; unknown 0\n"
    assert re.search(r"sending to 127\.0\.0\.1:\d+ \[[#-]{24}\] [0-6]/6", drawn), drawn
    assert drawn.rstrip(" ").endswith("\r")


def _read_all(descriptor: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 4096)
        except OSError:  # EIO: the other end was closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_several_processes(smtp_server: StartServer, tmp_path: Path) -> None:
    server = smtp_server()
    write_messages(tmp_path / "outbox", 8)
    result = run_cli("send-many", *plain(server), "--processes", "2", "outbox", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert untimed(result.stdout) == "sent 8 of 8; failed 0; unknown 0\n"
    assert len(by_subject(server.wait_for_messages(8))) == 8


def test_server_gone_mid_run_stops_with_exit_3(
    smtp_server: StartServer, tmp_path: Path
) -> None:
    holder: list[DevServer] = []

    def stop_after_first(message: ReceivedMessage) -> None:
        threading.Thread(target=holder[0].stop, daemon=True).start()

    server = smtp_server(on_message=stop_after_first)
    holder.append(server)
    write_messages(tmp_path / "outbox", 40)
    result = run_cli("send-many", *plain(server), "--max-attempts", "2", "--retry-delay",
                     "0.05", "--rate-limit", "40", "outbox", cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    summary = untimed(result.stdout).splitlines()[-1]
    found = re.fullmatch(r"sent (\d+) of 40; failed (\d+); unknown (\d+); "
                         r"not attempted (\d+)", summary)
    assert found is not None, result.stdout
    sent, failed, unknown, left = map(int, found.groups())
    assert sent >= 1 and failed >= 1 and left >= 1 and sent + failed + unknown + left == 40
    assert sent <= len(server.messages) <= sent + unknown
    line = assert_one_error_line(result)
    assert line.startswith(f"mailwire: error: stopped sending ({left} message(s) not "
                           "attempted): ")


def test_bad_password_exit_4(
    smtp_server: StartServer, certificates: Certificates, tmp_path: Path
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS, credentials={USER: PASSWORD})
    write_messages(tmp_path / "outbox", 2)
    result = run_cli("send-many", "--host", "127.0.0.1", "--port", str(server.port),
                     "--ca-file", str(certificates.ca_file), "--user", USER,
                     "--password-env", "PW", "outbox", cwd=tmp_path,
                     env=cli_env(tmp_path, PW="wrong-password"))
    assert result.returncode == 4
    line = assert_one_error_line(result)
    assert "535" in line and line.endswith("(password from --password-env PW)")
    assert line.startswith("mailwire: error: stopped sending (2 message(s) not attempted): ")
    # the login failed before the first message, and the summary still says so
    assert untimed(result.stdout) == "sent 0 of 2; failed 0; unknown 0; not attempted 2\n"
    assert server.messages == []


def test_nothing_listening_exit_3(tmp_path: Path) -> None:
    write_messages(tmp_path / "outbox", 2)
    result = run_cli("send-many", "--host", "127.0.0.1", "--port", "1", "--security", "none",
                     "outbox", cwd=tmp_path)
    assert result.returncode == 3
    assert "refused" in assert_one_error_line(result)
    assert untimed(result.stdout) == "sent 0 of 2; failed 0; unknown 0; not attempted 2\n"


def test_empty_folder_sends_nothing(tmp_path: Path) -> None:
    (tmp_path / "outbox").mkdir()
    result = run_cli("send-many", "--host", "127.0.0.1", "--port", "1", "outbox", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert untimed(result.stdout) == "sent 0 of 0; failed 0; unknown 0\n"
    assert result.stderr == "mailwire: warning: no *.eml files in outbox\n"


@pytest.mark.parametrize(("arguments", "expected"), [
    (["outbox", "missing.eml"], "argument PATH: no such file or directory: missing.eml"),
    (["-", "-"], "- (paths from standard input) can be given only once"),
    (["--user", "u", "--ask-password", "-"],
     "--ask-password would read the password from standard input, which - reads paths from"),
    (["--connections", "0", "outbox"], "argument --connections: expected at least 1, got 0"),
    (["--processes", "3", "--connections", "2", "outbox"],
     "--processes 3 needs at least 3 --connections"),
    (["--rate-limit", "0", "outbox"], "argument --rate-limit: expected a finite number above 0"),
    (["--from", "a@b@c", "outbox"], "--from 'a@b@c': address 'a@b@c' has an invalid local part"),
    (["--to", "x", "outbox"], "--to 'x': address 'x' has no local part and domain"),
])
def test_usage_errors_exit_2(
    smtp_server: StartServer, tmp_path: Path, arguments: list[str], expected: str
) -> None:
    server = smtp_server()
    write_messages(tmp_path / "outbox", 1)
    result = run_cli("send-many", *plain(server), *arguments, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in assert_one_error_line(result)
    assert result.stdout == "" and server.messages == []


def test_summary_gives_the_time_and_the_rate(smtp_server: StartServer, tmp_path: Path) -> None:
    server = smtp_server()
    write_messages(tmp_path / "outbox", 5)
    result = run_cli("send-many", *plain(server), "--rate-limit", "10", "outbox", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = re.fullmatch(r"sent 5 of 5; failed 0; unknown 0; (\d+\.\d) s, (\d+\.\d) "
                         r"messages/s\n", result.stdout)
    assert found is not None, result.stdout
    elapsed, rate = map(float, found.groups())
    assert 0.3 <= elapsed < 10  # five messages at ten a second take at least 0.4 s
    assert rate == pytest.approx(5 / elapsed, rel=0.1, abs=0.1)
