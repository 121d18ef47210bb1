"""DKIM-signed messages verify on what a real server received, for every input and path.

Each message goes through mailwire's development server (aiosmtpd, DATA) or Postfix (BDAT), and
the bytes the server got are verified by dkimpy against the test's own public key. The signature
covers mailwire's changes: Bcc removed, line ends normalized, Date and Message-ID added.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailwire import (
    AsyncSmtpClient,
    DkimSigner,
    MessageError,
    Outgoing,
    SecurityOptions,
    SmtpClient,
    SmtpPool,
)
from mailwire.devserver import DevServer
from mailwire.message import MessageInput, prepare
from tests.support.dkim_keys import DOMAIN, SELECTOR, KeyPair, key_pair, signature_tags, verifies
from tests.support.postfix import PostfixServer

RSA = key_pair("rsa")
HIDDEN = b"hidden@example.net"
RAW = (b"From: Alice <alice@example.com>\nTo: bob@example.org\nBcc: hidden@example.net\n"
       b"Subject: bare  LF\tinput\n\n.dot line\nline with trailing space \n\n\xc3\xa9t\xc3\xa9 "
       b"8-bit\n\n\n")


def signer(key: KeyPair = RSA, **options: object) -> DkimSigner:
    return DkimSigner(DOMAIN, SELECTOR, key.pem, **options)  # type: ignore[arg-type]


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class OneShot(io.RawIOBase):
    """A stream that can be read once (a pipe, a socket)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 7))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def email_message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "alice@example.com"
    message["To"] = "bob@example.org"
    message["Bcc"] = "hidden@example.net"
    message["Subject"] = "Grüße"
    message.set_content("Ünïcode body\n\n.dot\n", cte="8bit")
    return message


def positioned(data: bytes, start: int) -> io.BytesIO:
    """A seekable file already read up to where the message starts."""
    handle = io.BytesIO(data)
    handle.seek(start)
    return handle


def as_path(data: bytes, folder: Path) -> Path:
    path = folder / "message.eml"
    path.write_bytes(data)
    return path


INPUTS: dict[str, Callable[[Path], MessageInput]] = {
    "bytes": lambda _: RAW,
    "bytearray": lambda _: bytearray(RAW),
    "memoryview": lambda _: memoryview(RAW),
    "path": lambda folder: as_path(RAW, folder),
    "seekable-file": lambda _: positioned(b"not this\n" + RAW, len(b"not this\n")),
    "one-shot-stream": lambda _: io.BufferedReader(OneShot(RAW)),
    "iterator": lambda _: chunked(RAW, 5),
    "email-message": lambda _: email_message(),
}


def received(server: DevServer, count: int = 1) -> list[bytes]:
    return [message.data for message in server.wait_for_messages(count)]


def check(data: bytes, key: KeyPair = RSA) -> None:
    assert data.startswith(b"DKIM-Signature: "), data[:80]
    assert HIDDEN not in data
    assert verifies(data, key), data.decode("utf-8", "replace")


@pytest.mark.parametrize("kind", list(INPUTS))
def test_every_input_arrives_signed_and_verifies(
    kind: str, tmp_path: Path, server_pool: Callable[..., DevServer]
) -> None:
    server = server_pool()
    with SmtpClient(server.host, server.port, security=SecurityOptions.NONE, timeout=5.0,
                    dkim_signer=signer()) as client:
        result = client.send(INPUTS[kind](tmp_path))
    assert set(result.accepted) == {"bob@example.org", "hidden@example.net"}
    (data,) = received(server)
    check(data)
    if kind == "email-message":  # Date and Message-ID were added, and signed
        assert {"date", "message-id"} <= set(signature_tags(data)["h"].split(":"))


def test_the_async_client_signs_too(tmp_path: Path,
                                    server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()

    async def main() -> None:
        async with AsyncSmtpClient(server.host, server.port, security="none",
                                   timeout=5.0) as client:
            client.dkim_signer = signer()
            await client.send(as_path(RAW, tmp_path))
            await client.send(email_message())
            await client.send_mail("alice@example.com", "bob@example.org", "Hi", "Body\n")
            results = [result async for result in client.send_many(
                [RAW, Outgoing(chunked(RAW, 3), recipients=["bob@example.org"])])]
            assert all(result.sent for result in results)

    asyncio.run(main())
    for data in received(server, 5):
        check(data)


@pytest.mark.parametrize("connections", [1, 2])
def test_send_many_signs_every_message(connections: int, tmp_path: Path,
                                       server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()
    messages = [item for _ in range(3)
                for item in (RAW, as_path(RAW, tmp_path), email_message(), chunked(RAW, 11))]
    with SmtpClient(server.host, server.port, security="none", timeout=5.0) as client:
        client.dkim_signer = signer()
        results = list(client.send_many(messages, connections=connections))
    assert [result.sent for result in results] == [True] * len(messages)
    for data in received(server, len(messages)):
        check(data)


def test_send_mail_is_signed(server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()
    with SmtpClient(server.host, server.port, security="none", timeout=5.0,
                    dkim_signer=signer()) as client:
        client.send_mail("alice@example.com", ["bob@example.org"], "Hello", "Hi\n",
                         html="<p>Hi</p>")
    check(received(server)[0])


@pytest.mark.parametrize("key_kind", ["rsa", "ed25519"])
@pytest.mark.parametrize("header", ["relaxed", "simple"])
@pytest.mark.parametrize("body", ["relaxed", "simple"])
def test_every_canonicalization_and_algorithm_verifies(
    key_kind: str, header: str, body: str, server_pool: Callable[..., DevServer]
) -> None:
    server = server_pool()
    key = key_pair(key_kind)
    with SmtpClient(server.host, server.port, security="none", timeout=5.0,
                    dkim_signer=signer(key, header_canonicalization=header,
                                       body_canonicalization=body)) as client:
        client.send(RAW)
    check(received(server)[0], key)


def test_a_body_without_a_final_line_break_gets_one_and_verifies_over_bdat(
    postfix_server: PostfixServer,
) -> None:
    postfix_server.clear()
    message = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: x\r\n\r\nno end  "
    with SmtpClient(postfix_server.host, postfix_server.port, security="none", timeout=10.0,
                    dkim_signer=signer(body_canonicalization="simple")) as client:
        assert client.capabilities.chunking
        client.send(message)
    delivered = postfix_server.message(to="bob@example.org")
    assert delivered.content.endswith(b"no end  \n")
    assert verifies(delivered.raw, RSA)


@pytest.mark.parametrize("kind", ["path", "iterator", "email-message"])
def test_postfix_receives_verifiable_signatures_over_bdat(
    kind: str, tmp_path: Path, postfix_server: PostfixServer
) -> None:
    postfix_server.clear()
    with SmtpClient(postfix_server.host, postfix_server.port, security="none", timeout=10.0,
                    dkim_signer=signer()) as client:
        client.send(INPUTS[kind](tmp_path))
    delivered = postfix_server.message(to="bob@example.org")
    assert HIDDEN not in delivered.content
    assert verifies(delivered.raw, RSA)


def test_a_large_file_is_signed_in_two_passes_and_verifies(
    tmp_path: Path, server_pool: Callable[..., DevServer]
) -> None:
    line = b"0123456789 abcdefghij \t klmnopqrstuvwxyz\n"
    path = tmp_path / "large.eml"
    with path.open("wb") as handle:
        handle.write(b"From: alice@example.com\nTo: bob@example.org\nSubject: large\n\n")
        for _ in range(3 * 1024 * 1024 // len(line)):
            handle.write(line)
    server = server_pool()
    with SmtpClient(server.host, server.port, security="none", timeout=10.0,
                    dkim_signer=signer()) as client:
        client.send(path)
    check(received(server)[0])


class ChangingFile(io.BytesIO):
    """A seekable file whose content (of the same length) is different once it was read."""

    def __init__(self, first: bytes, second: bytes) -> None:
        super().__init__(first)
        self._second: bytes | None = second

    def seek(self, position: int, whence: int = 0) -> int:
        if self._second is not None and self.tell() > 0:
            with self.getbuffer() as content:
                content[:] = self._second
            self._second = None
        return super().seek(position, whence)


@pytest.mark.parametrize("changed", ["body", "header"])
def test_a_message_that_changes_between_the_passes_is_not_delivered(
    changed: str, server_pool: Callable[..., DevServer]
) -> None:
    first = b"From: alice@example.com\r\nTo: bob@example.org\r\n\r\n" + b"body\r\n" * 10000
    second = (first.replace(b"body\r\n", b"BODY\r\n", 1) if changed == "body"
              else first.replace(b"bob@", b"eve@"))
    server = server_pool()
    with SmtpClient(server.host, server.port, security="none", timeout=5.0,
                    dkim_signer=signer()) as client:
        with pytest.raises(MessageError, match="changed between DKIM signing and sending"):
            client.send(ChangingFile(first, second))
        client.send(RAW)  # the connection is usable, or replaced
    (data,) = received(server)
    check(data)
    assert server.messages[0].data == data


def test_a_message_dkim_cannot_sign_fails_before_connecting() -> None:
    # Nothing listens on port 9: any connection attempt would be a connection error.
    client = SmtpClient("127.0.0.1", 9, security="none", timeout=2.0, dkim_signer=signer())
    with pytest.raises(MessageError, match="no From field"):
        client.send(b"Sender: a@example.com\r\nTo: b@example.org\r\n\r\nx\r\n")
    with pytest.raises(MessageError, match="cannot be DKIM-signed"):
        client.send(b"From: a@example.com\r\nTo: b@example.org\r\nnot a field\r\n\r\nx\r\n")


def test_pooled_clients_sign_with_the_pool_option(server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()
    pool = SmtpPool(server.host, server.port, security="none", timeout=5.0,
                    max_connections=2, dkim_signer=signer())
    try:
        pool.send(RAW)
        assert all(result.sent for result in pool.send_many([RAW, email_message()]))
    finally:
        pool.close()
    for data in received(server, 3):
        check(data)


def test_without_a_signer_nothing_is_signed(server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()
    with SmtpClient(server.host, server.port, security="none", timeout=5.0) as client:
        client.dkim_signer = signer()
        client.dkim_signer = None
        client.send(RAW)
    assert b"DKIM-Signature" not in received(server)[0]


def test_prepare_accounts_for_the_signature_in_the_size(tmp_path: Path) -> None:
    for kind, make in INPUTS.items():
        prepared = prepare(make(tmp_path), dkim_signer=signer())
        content = b"".join(prepared.chunks)
        assert prepared.size == len(content), kind
        assert prepared.eight_bit is True, kind


def test_dkim_signer_must_be_a_signer() -> None:
    with pytest.raises(ValueError, match=r"dkim_signer must be a mailwire\.DkimSigner"):
        SmtpClient("127.0.0.1", dkim_signer="key.pem")  # type: ignore[arg-type]
