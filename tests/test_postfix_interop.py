"""Both clients against a real Postfix: BDAT (CHUNKING), pipelining, SMTPUTF8, TLS modes."""

from __future__ import annotations

import logging

import pytest

from mailwire import DataRefusedError, Outgoing, RecipientsRefusedError, SecurityOptions
from tests.support.clients import ClientFactory
from tests.support.postfix import PostfixServer, as_stored

SMALL = (b"From: a@example.test\r\nTo: b@example.test\r\nSubject: chunked\r\n\r\n"
         b".leading dot\r\nbare LF\nbare CR\rend")


@pytest.fixture
def postfix(postfix_server: PostfixServer) -> PostfixServer:
    postfix_server.clear()
    return postfix_server


def bdat_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "mailwire.protocol" and "BDAT" in record.getMessage()]


def test_a_message_goes_as_bdat_with_exact_counts(
    postfix: PostfixServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    client = make_client(postfix.host, postfix.port, security="none")
    result = client.send(SMALL)
    client.quit()
    assert result.accepted == ("b@example.test",)
    assert bdat_lines(caplog) and "LAST" in bdat_lines(caplog)[-1]
    delivered = postfix.message()
    normalized = SMALL.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    assert delivered.content == as_stored(normalized)
    assert delivered.sender == "a@example.test"


def test_a_large_message_goes_in_several_chunks(
    postfix: PostfixServer, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailwire.protocol")
    body = b"".join(b"line %06d .x\r\n" % number for number in range(200_000))
    message = b"From: a@example.test\r\nTo: big@example.test\r\nSubject: big\r\n\r\n" + body
    client = make_client(postfix.host, postfix.port, security="none", timeout=30)
    client.send(message)
    client.quit()
    chunks = bdat_lines(caplog)
    assert len(chunks) >= 2 and "LAST" in chunks[-1] and "LAST" not in chunks[0]
    assert postfix.message(timeout=30).content == as_stored(message)


def test_bulk_over_bdat_maps_every_result(
    postfix: PostfixServer, make_client: ClientFactory
) -> None:
    def message(index: int, to: str) -> Outgoing:
        raw = (f"From: a@example.test\r\nTo: {to}\r\nSubject: n{index}\r\n\r\n"
               f".dot {index}\r\n").encode()
        return Outgoing(raw, "a@example.test", [to])

    plan = {3: "refuse@example.test", 7: "reject-data@example.test",
            11: "tempfail-data@example.test"}
    messages = [message(index, plan.get(index, f"user{index}@example.test"))
                for index in range(20)]
    client = make_client(postfix.host, postfix.port, security="none")
    results = client.send_many(messages, max_attempts=2, retry_delay=0.01)
    client.quit()
    by_index = {result.index: result for result in results}
    assert sorted(by_index) == list(range(20))
    assert isinstance(by_index[3].error, RecipientsRefusedError)
    assert isinstance(by_index[7].error, DataRefusedError) and by_index[7].error.code == 550
    assert by_index[11].error is not None and by_index[11].error.code == 451
    assert by_index[11].attempts == 2
    sent = [index for index in range(20) if index not in plan]
    assert all(by_index[index].sent for index in sent)
    delivered = postfix.messages(count=len(sent))
    subjects = sorted(int(message.content.split(b"Subject: n")[1].split(b"\n")[0])
                      for message in delivered)
    assert subjects == sent


def test_utf8_address_uses_smtputf8(postfix: PostfixServer, make_client: ClientFactory) -> None:
    message = ("From: a@example.test\r\nTo: jos\u00e9@example.test\r\nSubject: utf8\r\n\r\n"
               "ol\u00e1\r\n").encode()
    client = make_client(postfix.host, postfix.port, security="none")
    result = client.send(message)
    client.quit()
    assert result.accepted == ("jos\u00e9@example.test",)
    assert postfix.message().protocol is not None
    assert "UTF8" in (postfix.message().protocol or "")


@pytest.mark.parametrize("security", [SecurityOptions.SSL_EXPLICIT, SecurityOptions.AUTO])
def test_starttls_with_postfix(postfix_tls_server: PostfixServer, make_client: ClientFactory,
                               security: SecurityOptions) -> None:
    postfix_tls_server.clear()
    client = make_client("localhost", postfix_tls_server.port, security=security,
                         ca_file=str(postfix_tls_server.ca_file))
    client.send(SMALL)
    info = client.connection_info
    client.quit()
    assert info is not None and info.security is SecurityOptions.SSL_EXPLICIT
    assert info.tls_version is not None
    assert "ESMTPS" in (postfix_tls_server.message().protocol or "")


def test_auto_detects_implicit_tls_on_postfix(postfix_tls_server: PostfixServer,
                                              make_client: ClientFactory) -> None:
    postfix_tls_server.clear()
    assert postfix_tls_server.implicit_tls_port is not None
    client = make_client("localhost", postfix_tls_server.implicit_tls_port, security="auto",
                         greeting_timeout=0.5, ca_file=str(postfix_tls_server.ca_file))
    client.send(SMALL)
    info = client.connection_info
    client.quit()
    assert info is not None and info.security is SecurityOptions.SSL_IMPLICIT
    assert postfix_tls_server.message().sender == "a@example.test"
