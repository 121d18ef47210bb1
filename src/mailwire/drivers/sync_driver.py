"""The blocking driver: performs each request a flow yields on a ``SyncConnection``."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Generator, Iterator
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
from mailwire.transport.sync_connection import SyncConnection

T = TypeVar("T")
R = TypeVar("R")


def run(flow: Flow[T], connection: SyncConnection) -> T:
    """Drive ``flow`` to its end; I/O failures are thrown into it as mailwire errors."""
    try:
        next(_drive(flow, connection, None))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("a flow run without results handed one out")


def drain(flow: Flow[None], connection: SyncConnection, results: deque[R]) -> Iterator[R]:
    """Drive ``flow`` like ``run``, handing out what it appends to ``results`` as it goes."""
    yield from _drive(flow, connection, results)


def _drive(flow: Flow[T], connection: SyncConnection,
           results: deque[Any] | None) -> Generator[Any, None, T]:
    result: Any = None
    error: SmtpError | None = None
    while True:
        try:
            request = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            while results:
                yield results.popleft()
            return done.value  # type: ignore[no-any-return]
        error = None
        try:
            result = perform(request, connection)
        except SmtpError as failure:
            result = None
            error = failure
        while results:
            yield results.popleft()


def perform(request: Request, connection: SyncConnection) -> Any:
    if isinstance(request, Write):
        return connection.send(request.data, request.phase, request.timeout)
    if isinstance(request, Read):
        return connection.receive(request.phase, request.timeout)
    if isinstance(request, Open):
        return connection.open(request.endpoint, tls=request.tls, timeout=request.timeout)
    if isinstance(request, StartTls):
        return connection.start_tls(timeout=request.timeout)
    if isinstance(request, Sleep):
        return time.sleep(request.seconds)
    if isinstance(request, CheckIdle):
        return connection.is_quiet()
    return connection.close()
