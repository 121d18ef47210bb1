"""SmtpPool.send_many: pipelined on one pooled connection or spread over several.

The counting server tallies every message by label, so a message sent twice or lost shows.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator

import pytest

from mailwire import (
    AsyncSmtpPool,
    BulkResult,
    Outgoing,
    RecipientsRefusedError,
    SmtpPool,
    SmtpUsageError,
)
from mailwire.devserver import Certificates, DevServer
from tests.support.chaos import ChaosServer
from tests.support.pooling import labelled, secure_options
from tests.support.postfix import PostfixServer

Counting = Callable[..., ChaosServer]


def test_one_connection_pipelines_the_batch_on_a_pooled_connection(
    secure_server: DevServer, certificates: Certificates
) -> None:
    pool = SmtpPool("127.0.0.1", secure_server.port, **secure_options(certificates))
    pool.send(labelled("warm"))
    results = list(pool.send_many(labelled(n) for n in range(50)))
    pool.close()
    assert [result.index for result in results] == list(range(50))
    assert all(result.sent for result in results)
    received = secure_server.wait_for_messages(51)
    assert len({message.peer for message in received}) == 1


def test_several_connections_share_the_input_and_number_results_by_input_position(
    counting_server: Counting,
) -> None:
    server = counting_server()
    pool = SmtpPool(server.host, server.port, security="none", max_connections=3)
    progress: list[tuple[int, int | None]] = []
    messages = [labelled(n) for n in range(300)]
    results = list(pool.send_many(messages, connections=3,
                                  progress=lambda done, total: progress.append((done, total))))
    assert sorted(result.index for result in results) == list(range(300))
    assert all(result.sent for result in results)
    assert server.counts == {str(n): 1 for n in range(300)}
    assert server.stats.connections == 3
    assert progress[-1] == (300, 300)
    assert (pool.in_use, pool.idle) == (0, 3)
    pool.close()


def test_busy_connections_are_not_waited_for(counting_server: Counting) -> None:
    server = counting_server()
    pool = SmtpPool(server.host, server.port, security="none", max_connections=3,
                    wait_timeout=0.5)
    with pool.borrow():
        results = list(pool.send_many((labelled(n) for n in range(40)), connections=3))
        assert pool.in_use == 1
    assert len(results) == 40 and all(result.sent for result in results)
    assert server.stats.connections == 2
    pool.close()


def test_stopping_early_hands_out_no_more_messages_and_gives_connections_back(
    counting_server: Counting,
) -> None:
    server = counting_server()
    pool = SmtpPool(server.host, server.port, security="none", max_connections=2)
    taken = itertools.count()

    def endless() -> Iterator[bytes]:
        for number in itertools.count():
            next(taken)
            yield labelled(number)

    outcomes = pool.send_many(endless(), connections=2)
    first = [next(outcomes) for _ in range(20)]
    outcomes.close()  # type: ignore[attr-defined]
    assert all(result.sent for result in first)
    assert pool.in_use == 0
    handed_out = next(taken)
    if pool.idle == 0:  # closed, not reused: the connections' goodbyes are done
        server.wait_idle()
    counted = sum(server.counts.values())
    assert 20 <= counted <= handed_out
    assert all(count == 1 for count in server.counts.values())
    pool.close()


def test_a_refused_message_does_not_spoil_the_connection_for_the_next_user(
    smtp_server: Callable[..., DevServer],
) -> None:
    server = smtp_server(refuse_recipients=["refused@example.org"])
    pool = SmtpPool(server.host, server.port, security="none", max_connections=1)
    refused = labelled("refused").replace(b"user@example.org", b"refused@example.org")
    [result] = pool.send_many([refused])
    assert not result.sent and result.error is not None and result.error.code == 550
    assert pool.send(labelled("next")).accepted == ("user@example.org",)
    [again] = pool.send_many([labelled("batch")])
    assert again.sent
    pool.close()
    assert len(server.wait_for_messages(2)) == 2


def test_a_message_refused_at_its_end_of_data_leaves_the_pooled_connection_usable(
    postfix_server: PostfixServer,
) -> None:
    """Postfix keeps a transaction refused at its end of data open ("503 nested MAIL" for the
    next MAIL). The pooled connection goes back as it is and its next user's message starts
    with RSET: sent on the same connection, not on a new one."""
    server = postfix_server
    server.clear()
    pool = SmtpPool(server.host, server.port, security="none", max_connections=1)
    refused = labelled("refused").replace(b"user@example.org", b"reject-data@example.test")
    [result] = pool.send_many([refused])
    assert not result.sent and result.error is not None and result.error.code == 550
    with pool.borrow() as client:
        first = client.connection_info
    assert first is not None
    accepted = labelled("next").replace(b"user@example.org", b"pooled@example.test")
    [again] = pool.send_many([accepted])
    assert again.sent, again.error
    with pool.borrow() as client:
        assert client.connection_info is not None
        assert client.connection_info.local_address == first.local_address
    pool.close()
    assert [message.recipient for message in server.messages(to="pooled@example.test")] == [
        "pooled@example.test"]


def _mixed(count: int) -> list[Outgoing]:
    """Every fourth message to a recipient the server refuses."""
    return [Outgoing(labelled(n), recipients=["bad@example.org" if n % 4 == 3
                                              else "b@example.org"])
            for n in range(count)]


@pytest.mark.parametrize("connections", [1, 2])
def test_callbacks_and_window_reach_every_connection_with_input_positions(
    smtp_server: Callable[..., DevServer], connections: int
) -> None:
    server = smtp_server(refuse_recipients={"bad@example.org"})
    sent: list[BulkResult] = []
    failed: list[BulkResult] = []
    with SmtpPool(server.host, server.port, security="none", max_connections=2) as pool:
        results = list(pool.send_many(_mixed(40), connections=connections, max_in_flight=1,
                                      on_sent=sent.append, on_failed=failed.append))
    assert sorted(result.index for result in sent) == [n for n in range(40) if n % 4 != 3]
    assert sorted(result.index for result in failed) == [n for n in range(40) if n % 4 == 3]
    assert all(isinstance(result.error, RecipientsRefusedError) for result in failed)
    assert sorted(sent + failed, key=lambda result: result.index) == sorted(
        results, key=lambda result: result.index)
    assert len(server.wait_for_messages(30)) == 30


def test_a_bad_window_is_refused_before_a_connection_is_borrowed(
    counting_server: Counting,
) -> None:
    server = counting_server()
    with SmtpPool(server.host, server.port, security="none") as pool:
        with pytest.raises(SmtpUsageError, match="max_in_flight"):
            pool.send_many([labelled(1)], max_in_flight=0)
        assert pool.in_use == 0
    assert server.stats.connections == 0


def test_the_async_pool_takes_the_same_options(smtp_server: Callable[..., DevServer]) -> None:
    server = smtp_server(refuse_recipients={"bad@example.org"})
    failed: list[BulkResult] = []

    async def main() -> list[BulkResult]:
        async with AsyncSmtpPool(server.host, server.port, security="none",
                                 max_connections=2) as pool:
            return [result async for result in pool.send_many(
                _mixed(12), connections=2, max_in_flight=2, on_failed=failed.append)]

    results = asyncio.run(main())
    assert sorted(result.index for result in results) == list(range(12))
    assert sorted(result.index for result in failed) == [3, 7, 11]
