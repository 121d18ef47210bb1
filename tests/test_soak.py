"""Soak: bulk sending to a server that drops connections and answers 4xx at random.

A chaos server (``tests/support/chaos.py``) answers some commands 451 or 421, drops connections
at every stage (including right after it kept and counted a message), refuses some messages
after their data, and sometimes goes quiet after keeping one. ``send_many`` runs against it on
both clients, with one and with three connections, until the time budget is used up
(``MAILWIRE_SOAK_SECONDS``, 24 s by default, split between the four runs; loopback only).

What must hold for every message (``conversation/bulk.py`` promises it):
- reported sent: the server kept it exactly once;
- reported failed with any error but ``DeliveryUnknownError``: the server never kept it;
- reported ``DeliveryUnknownError``: kept once or not at all, never twice;
and so the client's sent total is the server's tally less the unknown-but-kept messages.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from mailwire import BulkResult, DeliveryUnknownError
from mailwire.conversation.tickets import is_transient
from tests.support.chaos import (
    ChaosServer,
    Faults,
)
from tests.support.clients import ClientFactory

SOAK_SECONDS = float(os.environ.get("MAILWIRE_SOAK_SECONDS", "24"))
RUNS = 4  # {sync, async} x {1, 3 connections}
MINIMUM_MESSAGES = 300
MAX_ATTEMPTS = 6
TIMEOUT = 0.5


def message(index: int) -> bytes:
    return (f"From: soak@example.com\r\nTo: sink@example.org\r\nSubject: soak {index}\r\n"
            f"X-Soak-Id: soak-{index}\r\n\r\nmessage {index}\r\n.a line with a dot\r\n").encode()


def budgeted(seconds: float) -> Iterator[bytes]:
    """Messages until ``seconds`` have passed (and at least ``MINIMUM_MESSAGES``), read lazily
    by ``send_many`` as it goes."""
    deadline = time.monotonic() + seconds
    for index in itertools.count():
        if index >= MINIMUM_MESSAGES and time.monotonic() > deadline:
            return
        yield message(index)


def check_accounting(results: list[BulkResult], server: ChaosServer) -> dict[str, int]:
    server.wait_idle()
    counts = server.counts
    indexes = [result.index for result in results]
    assert sorted(indexes) == list(range(len(results))), "every message reported exactly once"
    assert server.unlabelled == 0
    doubles = {label: count for label, count in counts.items() if count > 1}
    assert not doubles, f"messages kept more than once: {doubles}"

    tally: Counter[str] = Counter()
    for result in results:
        kept = counts.get(f"soak-{result.index}", 0)
        assert 1 <= result.attempts <= MAX_ATTEMPTS, result
        if result.sent:
            assert result.error is None and result.result is not None
            assert result.result.reply.code == 250
            assert kept == 1, f"reported sent but kept {kept} times: {result}"
            tally["sent"] += 1
        elif isinstance(result.error, DeliveryUnknownError):
            assert kept in (0, 1)
            tally["unknown, kept" if kept else "unknown, not kept"] += 1
        else:
            assert result.error is not None
            assert kept == 0, f"reported failed ({result.error!r}) but kept: {result}"
            if is_transient(result.error):
                # A transient failure is only reported once the attempts are used up.
                assert result.attempts == MAX_ATTEMPTS, result
            tally["failed"] += 1
    assert tally["sent"] == sum(counts.values()) - tally["unknown, kept"]
    return dict(tally)


@pytest.mark.parametrize("connections", [1, 3])
def test_soak_every_message_is_accounted_for(
    chaos_server: Callable[..., ChaosServer],
    make_client: ClientFactory,
    connections: int,
) -> None:
    server = chaos_server(Faults(), seed=20240 + connections)
    client = make_client(server.host, server.port, security="none", timeout=TIMEOUT,
                         greeting_timeout=TIMEOUT)
    started = time.monotonic()
    results = client.send_many(budgeted(SOAK_SECONDS / RUNS), connections=connections,
                               max_attempts=MAX_ATTEMPTS, retry_delay=0.005)
    elapsed = time.monotonic() - started
    client.quit()
    tally = check_accounting(results, server)

    # The run was a real one: enough messages, and the faults did happen.
    assert len(results) >= MINIMUM_MESSAGES
    assert tally.get("sent", 0) > 0.8 * len(results), tally
    faults = server.stats.faults
    assert faults["drop_after_count"] > 0 and faults["mail_451"] > 0, faults
    assert server.stats.connections > 10
    print(f"\n{len(results)} messages in {elapsed:.1f} s over {server.stats.connections} "
          f"connections: {tally}; faults {dict(faults)}")


def test_soak_without_faults_sends_everything_once(
    chaos_server: Callable[..., ChaosServer],
    make_client: ClientFactory,
) -> None:
    """The control run: the same accounting with no fault at all gives all sent, all kept."""
    server = chaos_server(Faults.none())
    client = make_client(server.host, server.port, security="none", timeout=5.0)
    results = client.send_many([message(index) for index in range(500)], connections=3)
    client.quit()
    tally = check_accounting(results, server)
    assert tally == {"sent": 500}
    assert sum(server.counts.values()) == 500
