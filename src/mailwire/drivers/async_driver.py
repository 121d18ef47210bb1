"""The asyncio driver: performs each request a flow yields on an ``AsyncConnection``."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

from mailwire.conversation.requests import (
    CheckIdle,
    Flow,
    Open,
    Read,
    Request,
    Sleep,
    StartTls,
    Write,
)
from mailwire.errors import SmtpError
from mailwire.transport.async_connection import NOT_DONE, WRITTEN_MUST_DRAIN, AsyncConnection

T = TypeVar("T")
R = TypeVar("R")


async def run(flow: Flow[T], connection: AsyncConnection) -> T:
    """Drive ``flow`` to its end; I/O failures are thrown into it as mailwire errors."""
    value: Any = None
    async for item in _drive(flow, connection, None, finish=True):
        value = item.value  # the one item: _Finished
    return value  # type: ignore[no-any-return]


def drain(flow: Flow[None], connection: AsyncConnection,
          results: deque[R]) -> AsyncIterator[R]:
    """Drive ``flow`` like ``run``, handing out what it appends to ``results`` as it goes."""
    return _drive(flow, connection, results, finish=False)


@dataclass(frozen=True, slots=True)
class _Finished:
    """The last thing ``_drive`` hands out: the flow's return value."""

    value: Any


async def _drive(flow: Flow[Any], connection: AsyncConnection, results: deque[Any] | None, *,
                 finish: bool) -> AsyncIterator[Any]:
    """The one driving loop; with ``finish``, its last item is the flow's ``_Finished``."""
    result: Any = None
    error: SmtpError | None = None
    while True:
        try:
            request = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            while results:
                yield results.popleft()
            if finish:
                yield _Finished(done.value)
            return
        error = None
        try:
            result = connection.perform_now(request)
            if result is NOT_DONE:
                result = await perform(request, connection)
            elif result is WRITTEN_MUST_DRAIN:
                assert isinstance(request, Write)
                await connection.send(request.data, request.phase, request.timeout,
                                      written=True)
                result = None
        except SmtpError as failure:
            result = None
            error = failure
        while results:
            yield results.popleft()


async def perform(request: Request, connection: AsyncConnection) -> Any:
    if isinstance(request, Write):
        return await connection.send(request.data, request.phase, request.timeout)
    if isinstance(request, Read):
        return await connection.receive(request.phase, request.timeout)
    if isinstance(request, Open):
        return await connection.open(request.endpoint, tls=request.tls, timeout=request.timeout)
    if isinstance(request, StartTls):
        return await connection.start_tls(timeout=request.timeout)
    if isinstance(request, Sleep):
        return await asyncio.sleep(request.seconds)
    if isinstance(request, CheckIdle):
        return connection.is_quiet()
    return connection.close()
