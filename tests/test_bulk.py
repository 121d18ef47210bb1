"""send_many on both clients: pipelining across messages, refusals mid-batch, retries."""

from __future__ import annotations

import pytest

from mailwire import (
    DeliveryUnknownError,
    MessageError,
    Outgoing,
    RecipientsRefusedError,
    SenderRefusedError,
    SmtpClient,
)
from mailwire.devserver import DevServer
from tests.support.clients import ClientFactory
from tests.support.scripted import (
    Close,
    Expect,
    ExpectData,
    Reply,
    ScriptedServerFactory,
    Step,
    goodbye,
    handshake,
    mail_transaction,
)


def raw(index: int, sender: str = "a@example.com", to: str = "b@example.org") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: m{index}\r\n\r\n"
            f"body {index}\r\n.starts with a dot\r\n").encode()


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "lockstep"])
def test_refusals_mid_batch_map_to_the_right_message_and_recipient(
    smtp_server: type[DevServer], make_client: ClientFactory, pipelining: bool
) -> None:
    server = smtp_server(refuse_recipients={"bad@example.org"},
                         refuse_senders={"evil@example.com"}, pipelining=pipelining)
    messages: list[Outgoing] = []
    for index in range(25):
        kind = index % 5
        if kind == 1:
            messages.append(Outgoing(raw(index), recipients=["bad@example.org"]))
        elif kind == 2:
            messages.append(Outgoing(raw(index), sender="evil@example.com"))
        elif kind == 3:
            messages.append(Outgoing(raw(index), recipients=["bad@example.org", "c@example.org"]))
        else:
            messages.append(Outgoing(raw(index)))
    client = make_client("127.0.0.1", server.port, security="none")
    results = client.send_many(messages, retry_delay=0.01)

    assert [result.index for result in results] == list(range(25))
    for result in results:
        kind = result.index % 5
        if kind == 1:
            assert isinstance(result.error, RecipientsRefusedError)
            assert result.error.refused["bad@example.org"].code == 550
        elif kind == 2:
            assert isinstance(result.error, SenderRefusedError) and result.error.code == 550
        elif kind == 3:
            assert result.result is not None
            assert result.result.accepted == ("c@example.org",)
            assert result.result.refused["bad@example.org"].code == 550
        else:
            assert result.result is not None and result.result.accepted == ("b@example.org",)
        assert result.attempts == 1
    received = server.wait_for_messages(15)
    subjects = [message.data.split(b"Subject: ")[1].split(b"\r\n")[0] for message in received]
    assert subjects == [f"m{i}".encode() for i in range(25) if i % 5 not in (1, 2)]
    assert all(message.data.endswith(b"\r\n.starts with a dot\r\n") for message in received)
    assert len({message.peer for message in received}) == 1


def test_messages_from_a_generator_over_several_connections(
    smtp_server: type[DevServer], make_client: ClientFactory
) -> None:
    server = smtp_server()
    client = make_client("127.0.0.1", server.port, security="none")
    progress: list[tuple[int, int | None]] = []
    results = client.send_many((raw(index) for index in range(60)), connections=3,
                               progress=lambda done, total: progress.append((done, total)))
    assert sorted(result.index for result in results) == list(range(60))
    assert all(result.sent for result in results)
    assert progress[-1] == (60, None) and len(progress) == 60
    received = server.wait_for_messages(60)
    assert len(received) == 60
    assert len({message.peer for message in received}) == 3


def test_messages_per_connection_and_rate_limit(
    smtp_server: type[DevServer], make_client: ClientFactory
) -> None:
    server = smtp_server()
    client = make_client("127.0.0.1", server.port, security="none")
    results = client.send_many([raw(index) for index in range(9)], messages_per_connection=4,
                               rate_limit=200.0)
    assert all(result.sent for result in results)
    received = server.wait_for_messages(9)
    peers = [message.peer for message in received]
    assert len(set(peers)) == 3
    assert [peers.count(peer) for peer in dict.fromkeys(peers)] == [4, 4, 1]


def _failing_at(stage: str) -> list[Step]:
    """A first connection that fails at ``stage`` of a pipelined transaction."""
    start = [*handshake(["PIPELINING"]), Expect(b"MAIL FROM:")]
    accepted_envelope: list[Step] = [Reply(250, "ok"), Expect(b"RCPT TO:"), Reply(250, "ok"),
                                     Expect(b"DATA")]
    scripts: dict[str, list[Step]] = {
        "421 at MAIL": [*start, Reply(421, "4.3.2 going down"), Close()],
        "421 at RCPT": [*start, Reply(250, "ok"), Expect(b"RCPT TO:"),
                        Reply(421, "4.3.2 going down"), Close()],
        "451 at DATA": [*start, *accepted_envelope, Reply(451, "4.3.0 try later"),
                        Expect(b"RSET"), Reply(250, "ok"), Close()],
        "451 after data": [*start, *accepted_envelope, Reply(354, "go"), ExpectData(),
                           Reply(451, "4.3.0 try later"), Close()],
        "dropped at MAIL": [*start, Close()],
        "dropped in data": [*start, *accepted_envelope, Reply(354, "go"), Expect(b""),
                            Close(reset=True)],
    }
    return scripts[stage]


def _message_for(stage: str) -> bytes:
    """Small, except where the server must drop the connection before the data can end."""
    if stage != "dropped in data":
        return raw(0)
    return raw(0) + (b"x" * 998 + b"\r\n") * 32 * 1024


@pytest.mark.parametrize("stage", ["421 at MAIL", "421 at RCPT", "451 at DATA", "451 after data",
                                   "dropped at MAIL", "dropped in data"])
def test_transient_failures_are_retried_once_on_a_fresh_connection(
    scripted_server: ScriptedServerFactory, make_client: ClientFactory, stage: str
) -> None:
    server = scripted_server(_failing_at(stage),
                             [*handshake(["PIPELINING"]), *mail_transaction(), *goodbye()],
                             allow_errors=True)
    client = make_client(server.host, server.port, security="none", timeout=5)
    (result,) = client.send_many([_message_for(stage)], retry_delay=0.01)
    client.quit()
    assert result.sent and result.attempts == 2
    server.wait()
    delivered = [sum(chunk.endswith(b"\r\n.\r\n") for chunk in connection.received)
                 for connection in server.connections]
    assert delivered[-1] == 1
    assert server.connection_count == 2


def test_a_connection_lost_after_the_end_of_data_is_unknown_and_not_retried(
    scripted_server: ScriptedServerFactory, make_client: ClientFactory
) -> None:
    lost = [*handshake(["PIPELINING"]), Expect(b"MAIL FROM:"), Reply(250, "ok"),
            Expect(b"RCPT TO:"), Reply(250, "ok"), Expect(b"DATA"), Reply(354, "go"),
            ExpectData(), Close()]
    server = scripted_server(lost, [*handshake(["PIPELINING"]), *mail_transaction(),
                                    *goodbye()], allow_errors=True)
    client = make_client(server.host, server.port, security="none", timeout=5)
    first, second = client.send_many([raw(0), raw(1)], retry_delay=0.01)
    assert isinstance(first.error, DeliveryUnknownError) and first.attempts == 1
    assert second.sent and second.attempts == 2
    client.quit()
    server.wait()
    assert [sum(chunk.endswith(b"\r\n.\r\n") for chunk in connection.received)
            for connection in server.connections] == [1, 1]


def test_permanent_failures_are_reported_not_retried(
    scripted_server: ScriptedServerFactory, make_client: ClientFactory
) -> None:
    refused = [*handshake(["PIPELINING"]), Expect(b"MAIL FROM:"), Reply(250, "ok"),
               Expect(b"RCPT TO:"), Reply(250, "ok"), Expect(b"DATA"), Reply(354, "go"),
               ExpectData(), Reply(554, "5.7.1 rejected"), *goodbye()]
    server = scripted_server(refused)
    client = make_client(server.host, server.port, security="none", timeout=5)
    (result,) = client.send_many([raw(0)], retry_delay=0.01)
    client.quit()
    assert not result.sent and result.error is not None and result.error.code == 554
    assert result.attempts == 1
    server.wait()
    assert server.connection_count == 1


def test_attempts_are_bounded(scripted_server: ScriptedServerFactory,
                              make_client: ClientFactory) -> None:
    always_busy = [*handshake(["PIPELINING"]), Expect(b"MAIL FROM:"),
                   Reply(421, "4.3.2 busy"), Close()]
    server = scripted_server(always_busy, allow_errors=True)
    client = make_client(server.host, server.port, security="none", timeout=5)
    (result,) = client.send_many([raw(0)], max_attempts=3, retry_delay=0.01)
    assert not result.sent and result.attempts == 3 and result.error is not None
    assert result.error.code == 421
    assert server.connection_count == 3


def test_connections_spread_over_worker_processes(smtp_server: type[DevServer]) -> None:
    server = smtp_server(refuse_recipients={"bad@example.org"})
    count = 300
    messages: list[object] = [Outgoing(raw(index), recipients=["bad@example.org"])
                              if index % 7 == 3 else raw(index) for index in range(count)]
    messages.append(chunk for chunk in [raw(count)])
    with SmtpClient("127.0.0.1", server.port, security="none") as client:
        results = list(client.send_many(messages, connections=3, processes=3,  # type: ignore[arg-type]
                                        retry_delay=0.01))
    by_index = {result.index: result for result in results}
    assert sorted(by_index) == list(range(count + 1))
    for index in range(count):
        if index % 7 == 3:
            error = by_index[index].error
            assert isinstance(error, RecipientsRefusedError)
            assert error.refused["bad@example.org"].code == 550
        else:
            assert by_index[index].sent
    assert isinstance(by_index[count].error, MessageError)
    sent = count - len(range(3, count, 7))
    received = server.wait_for_messages(sent)
    assert len(received) == sent
    assert len({message.peer for message in received}) >= 2


def test_messages_per_connection_holds_while_the_next_message_is_staged(
    smtp_server: type[DevServer], make_client: ClientFactory
) -> None:
    """Without a rate limit the next message is prepared ahead: it must still wait for the
    next connection once this one has had its share."""
    server = smtp_server()
    client = make_client("127.0.0.1", server.port, security="none")
    results = client.send_many([raw(index) for index in range(9)], messages_per_connection=4)
    assert all(result.sent for result in results)
    peers = [message.peer for message in server.wait_for_messages(9)]
    assert [peers.count(peer) for peer in dict.fromkeys(peers)] == [4, 4, 1]
