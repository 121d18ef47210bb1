"""Tests of the scripted SMTP test server itself, driven by the standard library only."""

from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.scripted import (
    Close,
    Expect,
    ExpectBytes,
    ExpectClose,
    ExpectData,
    Reply,
    ReplyLines,
    ScriptedServer,
    ScriptedServerFactory,
    Send,
    SendSlowly,
    Stall,
    StallHandshake,
    StartTls,
    ehlo_reply,
    goodbye,
    greeting,
    handshake,
    mail_transaction,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tls_contexts() -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    """(server context, client context) for a throwaway CA and a 127.0.0.1 certificate."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    yield server_context, client_context


def connect(server: ScriptedServer, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(server.address, timeout=timeout)


def read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def test_reply_encoding() -> None:
    assert Reply(250, "ok").data == b"250 ok\r\n"
    assert Reply(250).data == b"250\r\n"
    assert ReplyLines(250, ["a", "b", "c"]).data == b"250-a\r\n250-b\r\n250 c\r\n"
    assert ehlo_reply(["SIZE 10"], hostname="h").data == b"250-h\r\n250 SIZE 10\r\n"
    with pytest.raises(ValueError):
        ReplyLines(250, [])


def test_scripts_are_validated() -> None:
    with pytest.raises(ValueError, match="last step"):
        ScriptedServer(Close(), greeting())
    with pytest.raises(ValueError, match="ssl_context"):
        ScriptedServer(StartTls())
    with pytest.raises(TypeError):
        ScriptedServer(greeting(), [greeting()])


def test_smtplib_sends_a_message(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(
        *handshake(["8BITMIME", "SIZE 100000"]), *mail_transaction(recipients=2), *goodbye()
    )
    with smtplib.SMTP(server.host, server.port, local_hostname="client.test", timeout=2) as smtp:
        refused = smtp.sendmail(
            "a@example.com",
            ["b@example.com", "c@example.com"],
            b"Subject: hi\r\n\r\nhello\r\n.leading dot\r\n",
        )
    assert refused == {}
    server.wait()
    received = server.connections[0].received
    assert received[0] == b"ehlo client.test\r\n"
    assert received[1].startswith(b"mail FROM:<a@example.com>")
    assert received[2:5] == [
        b"rcpt TO:<b@example.com>\r\n",
        b"rcpt TO:<c@example.com>\r\n",
        b"data\r\n",
    ]
    assert received[5] == b"Subject: hi\r\n\r\nhello\r\n..leading dot\r\n.\r\n"
    assert received[6] == b"QUIT\r\n"
    assert server.connections[0].completed
    assert server.received == received
    assert server.errors == []


def test_stall_is_a_client_timeout(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(greeting(), Stall(30))
    with connect(server, timeout=0.2) as sock:
        assert read_line(sock).startswith(b"220 ")
        sock.sendall(b"EHLO client.test\r\n")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert time.monotonic() - started < 1
    server.wait()
    assert server.connections[0].received == [b"EHLO client.test\r\n"]
    assert server.connections[0].completed


def test_stop_unblocks_a_stall() -> None:
    server = ScriptedServer(Stall(60))
    server.start()
    with connect(server):
        while server.connection_count == 0:
            time.sleep(0.01)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1
    assert server.connections[0].finished
    assert server.errors == []


def test_slow_greeting_arrives_byte_by_byte(scripted_server: ScriptedServerFactory) -> None:
    greeting_bytes = b"220 slow.test ESMTP\r\n"
    server = scripted_server(SendSlowly(greeting_bytes, delay=0.01), ExpectClose())
    chunks: list[bytes] = []
    started = time.monotonic()
    with connect(server) as sock:
        while not b"".join(chunks).endswith(b"\r\n"):
            chunks.append(sock.recv(1024))
    assert b"".join(chunks) == greeting_bytes
    assert len(chunks) > 1
    assert time.monotonic() - started >= 0.01 * (len(greeting_bytes) - 1) * 0.8
    server.wait()


def test_smtplib_starttls(
    scripted_server: ScriptedServerFactory,
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls_contexts
    server = scripted_server(
        *handshake(["STARTTLS"]),
        Expect(b"STARTTLS"),
        Reply(220, "2.0.0 Ready to start TLS"),
        StartTls(),
        Expect(b"EHLO"),
        ehlo_reply(["AUTH PLAIN"]),
        *goodbye(),
        ssl_context=server_context,
    )
    with smtplib.SMTP(server.host, server.port, local_hostname="client.test", timeout=2) as smtp:
        smtp.starttls(context=client_context)
        assert isinstance(smtp.sock, ssl.SSLSocket)
        smtp.ehlo("client.test")
        assert smtp.has_extn("auth")
    server.wait()
    assert server.connections[0].received == [
        b"ehlo client.test\r\n",
        b"STARTTLS\r\n",
        b"ehlo client.test\r\n",
        b"QUIT\r\n",
    ]
    assert server.connections[0].completed


def test_plaintext_pipelined_after_starttls_is_an_error(
    scripted_server: ScriptedServerFactory,
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, _ = tls_contexts
    server = scripted_server(
        *handshake(["STARTTLS"]),
        Expect(b"STARTTLS"),
        Reply(220, "go ahead"),
        StartTls(),
        ssl_context=server_context,
        allow_errors=True,
    )
    with connect(server) as sock:
        read_line(sock)
        sock.sendall(b"EHLO c\r\n")
        while read_line(sock).startswith(b"250-"):
            pass
        sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
    server.wait()
    assert server.connections[0].received[-1] == b"MAIL FROM:<evil@example.com>\r\n"
    [error] = server.errors
    assert "before the TLS handshake" in error


def test_stalled_tls_handshake(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(StallHandshake(30))
    client_context = ssl.create_default_context()
    with connect(server, timeout=0.2) as raw, pytest.raises(TimeoutError):
        client_context.wrap_socket(raw, server_hostname="localhost")
    server.wait()
    [hello] = server.connections[0].received
    assert hello.startswith(b"\x16\x03")


def test_expect_mismatch_is_reported(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(greeting(), Expect(b"EHLO"), *goodbye(), allow_errors=True)
    with connect(server) as sock:
        read_line(sock)
        sock.sendall(b"HELO client.test\r\n")
        assert sock.recv(1) == b""
    server.wait()
    [error] = server.errors
    assert "Expect(prefix=b'EHLO')" in error
    assert "HELO client.test" in error
    assert not server.connections[0].completed


def test_reset_close(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(greeting(), Expect(b"EHLO"), Close(reset=True))
    with connect(server) as sock:
        read_line(sock)
        sock.sendall(b"EHLO client.test\r\n")
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
    server.wait()


def test_graceful_close(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(greeting(), Close())
    with connect(server) as sock:
        assert read_line(sock).startswith(b"220")
        assert sock.recv(1) == b""


def test_one_script_per_connection_then_errors(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(
        [Reply(220, "first"), ExpectClose()],
        [Reply(554, "second"), ExpectClose()],
        allow_errors=True,
    )
    for expected in (b"220 first\r\n", b"554 second\r\n"):
        with connect(server) as sock:
            assert read_line(sock) == expected
    with connect(server) as sock:
        assert sock.recv(1) == b""
    server.wait(connections=3)
    assert server.connection_count == 3
    [error] = server.errors
    assert "unexpected connection #2" in error


def test_bdat_and_garbage(scripted_server: ScriptedServerFactory) -> None:
    server = scripted_server(
        Send(b"\x00\xffgarbage\r\n"), Expect(b"BDAT 5 LAST"), ExpectBytes(5), ExpectData()
    )
    with connect(server) as sock:
        assert read_line(sock) == b"\x00\xffgarbage\r\n"
        sock.sendall(b"BDAT 5 LAST\r\nhello.\r\n")
    server.wait()
    assert server.received == [b"BDAT 5 LAST\r\n", b"hello", b".\r\n"]


def test_unexpected_errors_fail_the_test_at_teardown(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            """
            import socket

            from tests.support.scripted import Expect


            def _mismatch(factory, **options):
                server = factory(Expect(b"EHLO"), **options)
                with socket.create_connection(server.address, timeout=2) as sock:
                    sock.sendall(b"NOOP\\r\\n")
                    sock.recv(1)
                server.wait()


            def test_unexpected(scripted_server):
                _mismatch(scripted_server)


            def test_allowed(scripted_server):
                _mismatch(scripted_server, allow_errors=True)
            """
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.support.scripted",
            "-p",
            "no:cacheprovider",
            "-q",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "2 passed, 1 error" in result.stdout, result.stdout + result.stderr
    assert "scripted server errors" in result.stdout
    assert "ERROR" in result.stdout and "test_unexpected" in result.stdout
