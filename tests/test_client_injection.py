"""Command injection through SmtpClient arguments (SECURITY.md item 1), seen from the server.

A CR, LF or other control character in the EHLO name or an envelope address is refused before
anything is written, and the connection stays usable. Each script ends with the client's QUIT,
so any injected command would break it.
"""

from __future__ import annotations

import pytest

from mailwire import SecurityOptions, SmtpClient, SmtpUsageError
from tests.support.scripted import (
    ExpectClose,
    ScriptedServerFactory,
    goodbye,
    greeting,
    handshake,
    mail_transaction,
)

MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n"
BAD_PIECES = ["\r\nRSET", "\nRSET", "\rRSET", "\x00", "\x7f", "\x1b", "\t"]


@pytest.mark.parametrize("piece", BAD_PIECES, ids=repr)
def test_ehlo_name_with_control_characters_is_refused_before_ehlo(
    scripted_server: ScriptedServerFactory, piece: str
) -> None:
    server = scripted_server(greeting(), ExpectClose())
    client = SmtpClient(
        server.host,
        server.port,
        security=SecurityOptions.NONE,
        timeout=2.0,
        local_hostname=f"client.example{piece}",
    )
    with pytest.raises(SmtpUsageError):
        client.connect()
    server.wait()
    assert server.received == []


@pytest.mark.parametrize("piece", BAD_PIECES, ids=repr)
@pytest.mark.parametrize("field", ["sender", "recipient"])
def test_envelope_address_with_control_characters_is_refused(
    scripted_server: ScriptedServerFactory, piece: str, field: str
) -> None:
    server = scripted_server(*handshake(["PIPELINING"]), *mail_transaction(), *goodbye())
    address = f"x{piece}@example.org"
    with SmtpClient(server.host, server.port, security=SecurityOptions.NONE, timeout=2.0) as client:
        client.connect()
        with pytest.raises(SmtpUsageError):
            if field == "sender":
                client.send(MESSAGE, sender=address)
            else:
                client.send(MESSAGE, recipients=["ok@example.org", address])
        assert client.is_connected
        client.send(MESSAGE)
    server.wait()
    mail = [chunk for chunk in server.received if chunk.startswith(b"MAIL")]
    assert mail == [b"MAIL FROM:<a@example.com>\r\n"]  # the server offers no SIZE


def test_header_addresses_with_control_characters_are_refused(
    scripted_server: ScriptedServerFactory,
) -> None:
    server = scripted_server(*handshake(["PIPELINING"]), *goodbye())
    raw = b"From: a@example.com\r\nTo: <b\x00@example.org>\r\nSubject: s\r\n\r\nbody\r\n"
    with SmtpClient(server.host, server.port, security=SecurityOptions.NONE, timeout=2.0) as client:
        client.connect()
        with pytest.raises(SmtpUsageError):
            client.send(raw)
    server.wait()
