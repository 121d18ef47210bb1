"""What counts as a message input: a str is refused, never read as a path or sent as text."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire import SecurityOptions, SmtpClient
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
