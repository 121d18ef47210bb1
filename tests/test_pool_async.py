"""AsyncSmtpPool against real servers: tasks sharing connections, limits, idle, cancellation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from mailwire import AsyncSmtpPool, SmtpTimeoutError, SmtpUsageError
from mailwire.devserver import Certificates, DevServer
from tests.support.chaos import ChaosServer
from tests.support.pooling import PASSWORD, USER, labelled, secure_options

Counting = Callable[..., ChaosServer]


async def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


def test_tasks_share_a_few_authenticated_connections(
    secure_server: DevServer, certificates: Certificates
) -> None:
    async def main() -> None:
        async with AsyncSmtpPool("127.0.0.1", secure_server.port, max_connections=3,
                                 **secure_options(certificates)) as pool:
            await asyncio.gather(*(pool.send(labelled(n)) for n in range(60)))
            assert pool.in_use == 0 and 1 <= pool.idle <= 3
            assert PASSWORD not in repr(pool)

    asyncio.run(main())
    received = secure_server.wait_for_messages(60)
    assert {message.auth_user for message in received} == {USER}
    assert 1 <= len({message.peer for message in received}) <= 3


def test_waiting_for_a_busy_pool_is_bounded(counting_server: Counting) -> None:
    server = counting_server()

    async def main() -> None:
        pool = AsyncSmtpPool(server.host, server.port, security="none", max_connections=1,
                             wait_timeout=0.3)
        async with pool.borrow():
            started = time.monotonic()
            with pytest.raises(SmtpTimeoutError, match=f"127.0.0.1:{server.port}"):
                await pool.send(labelled("late"))
            assert 0.3 <= time.monotonic() - started < 2.0
        await pool.send(labelled("after"))
        await pool.close()
        with pytest.raises(SmtpUsageError, match="closed"):
            await pool.send(labelled("closed"))

    asyncio.run(main())
    assert server.counts == {"after": 1}
    server.wait_idle()


def test_idle_connections_are_quit(counting_server: Counting) -> None:
    server = counting_server()

    async def main() -> None:
        pool = AsyncSmtpPool(server.host, server.port, security="none", idle_timeout=0.3)
        await pool.send(labelled(1))
        assert server.active == 1
        assert await _wait_until(lambda: server.active == 0, 3.0)
        await pool.send(labelled(2))
        await pool.close()

    asyncio.run(main())
    assert server.stats.connections == 2


def test_a_cancelled_task_does_not_give_back_its_connection(counting_server: Counting) -> None:
    server = counting_server()

    async def main() -> None:
        pool = AsyncSmtpPool(server.host, server.port, security="none", max_connections=1)
        entered = asyncio.Event()

        async def hold() -> None:
            async with pool.borrow() as client:
                await client.noop()
                entered.set()
                await asyncio.sleep(3600)

        task = asyncio.ensure_future(hold())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (pool.in_use, pool.idle) == (0, 0)
        await pool.send(labelled("next"))
        await pool.close()

    asyncio.run(main())
    assert server.stats.connections == 2
    assert server.counts == {"next": 1}


def test_send_many_spreads_over_pooled_connections(counting_server: Counting) -> None:
    server = counting_server()

    async def main() -> list[int]:
        async with AsyncSmtpPool(server.host, server.port, security="none",
                                 max_connections=3) as pool:
            return [result.index async for result in
                    pool.send_many([labelled(n) for n in range(200)], connections=3)
                    if result.sent]

    indices = asyncio.run(main())
    assert sorted(indices) == list(range(200))
    assert server.counts == {str(n): 1 for n in range(200)}
    assert server.stats.connections == 3
