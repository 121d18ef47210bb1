"""What counts as a message input: a str is refused, never read as a path or sent as text."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire import AsyncSmtpClient, Outgoing, SecurityOptions, SendResult, SmtpClient
from mailwire.devserver import DevServer
from mailwire.errors import SmtpUsageError
from mailwire.message import prepare

RAW = b"From: a@example.com\r\nTo: b@example.com\r\n\r\nbody\r\n"


class CustomPath(os.PathLike[str]):
    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return str(self.path)


def test_a_str_is_refused_with_advice_and_without_being_quoted(tmp_path: Path) -> None:
    secret_text = "From: a@example.com\r\nTo: b@example.com\r\n\r\nconfidential figures\r\n"
    with pytest.raises(SmtpUsageError, match=r"pathlib\.Path.*encode\(\)") as caught:
        prepare(secret_text)  # type: ignore[arg-type]
    assert "confidential" not in str(caught.value)


def test_a_str_naming_an_existing_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "message.eml"
    path.write_bytes(RAW)
    with pytest.raises(SmtpUsageError, match="not a message"):
        prepare(str(path))  # type: ignore[arg-type]


def test_paths_and_path_likes_are_read(tmp_path: Path) -> None:
    path = tmp_path / "message.eml"
    path.write_bytes(RAW)
    for given in (path, CustomPath(path)):
        assert b"".join(prepare(given).chunks) == RAW


def test_client_send_refuses_a_str_before_connecting(
    server_pool: Callable[..., DevServer]
) -> None:
    server = server_pool()
    client = SmtpClient(server.host, server.port, security=SecurityOptions.NONE, timeout=5.0)
    with pytest.raises(SmtpUsageError, match="not a message"):
        client.send("some text")  # type: ignore[arg-type]
    assert client.connection_info is None
    assert server.messages == []


def test_send_takes_an_outgoing_as_send_many_does(
    server_pool: Callable[..., DevServer]
) -> None:
    server = server_pool()
    outgoing = Outgoing(RAW, sender="envelope@example.com", recipients=["c@example.com"])
    with SmtpClient(server.host, server.port, security=SecurityOptions.NONE,
                    timeout=5.0) as client:
        result = client.send(outgoing)
    assert result.accepted == ("c@example.com",)
    received = server.wait_for_messages(1)
    assert (received[0].mail_from, received[0].rcpt_tos) == ("envelope@example.com",
                                                             ("c@example.com",))
    assert received[0].data == RAW


def test_async_send_takes_an_outgoing(server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()

    async def main() -> SendResult:
        async with AsyncSmtpClient(server.host, server.port, security=SecurityOptions.NONE,
                                   timeout=5.0) as client:
            return await client.send(Outgoing(RAW, recipients="d@example.com"))

    assert asyncio.run(main()).accepted == ("d@example.com",)
    assert server.wait_for_messages(1)[0].rcpt_tos == ("d@example.com",)


@pytest.mark.parametrize("keyword", [{"sender": "x@example.com"}, {"recipients": ["x@example.com"]},
                                     {"envid": "e1"}, {"require_tls": True},
                                     {"mail_options": ["MT-PRIORITY=3"]}])
def test_send_refuses_an_outgoing_with_envelope_keywords(
    server_pool: Callable[..., DevServer], keyword: dict[str, object]
) -> None:
    server = server_pool()
    client = SmtpClient(server.host, server.port, security=SecurityOptions.NONE, timeout=5.0)
    with pytest.raises(SmtpUsageError, match=f"Outgoing and {next(iter(keyword))}"):
        client.send(Outgoing(RAW), **keyword)  # type: ignore[arg-type]
    assert client.connection_info is None
    assert server.messages == []


@pytest.mark.parametrize("given", [42, None, object()], ids=["int", "None", "object"])
def test_something_that_is_no_message_is_a_usage_error(given: object) -> None:
    with pytest.raises(SmtpUsageError, match=r"is not a message: pass an email\.message\.Message"):
        prepare(given)  # type: ignore[arg-type]
