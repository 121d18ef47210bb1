"""The blocking driver: performs each request a flow yields on a ``SyncConnection``."""

from __future__ import annotations

from typing import Any, TypeVar

from mailwire.conversation.requests import CheckIdle, Flow, Open, Read, Request, StartTls, Write
from mailwire.errors import SmtpError
from mailwire.transport.sync_connection import SyncConnection

T = TypeVar("T")


def run(flow: Flow[T], connection: SyncConnection) -> T:
    """Drive ``flow`` to its end; I/O failures are thrown into it as mailwire errors."""
    result: Any = None
    error: SmtpError | None = None
    while True:
        try:
            request = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        error = None
        try:
            result = perform(request, connection)
        except SmtpError as failure:
            result = None
            error = failure


def perform(request: Request, connection: SyncConnection) -> Any:
    if isinstance(request, Write):
        return connection.send(request.data, request.phase, request.timeout)
    if isinstance(request, Read):
        return connection.receive(request.phase, request.timeout)
    if isinstance(request, Open):
        return connection.open(request.endpoint, tls=request.tls, timeout=request.timeout)
    if isinstance(request, StartTls):
        return connection.start_tls(timeout=request.timeout)
    if isinstance(request, CheckIdle):
        return connection.is_quiet()
    return connection.close()
