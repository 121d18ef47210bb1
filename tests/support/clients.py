"""Both clients behind one blocking face, so a test is written once and run against each.

``make_client`` (a fixture parametrized over "sync" and "async") builds either a ``SmtpClient``
or an ``AsyncSmtpClient`` wrapped in ``AsyncDriven``, whose methods block while the coroutine
runs on an event loop of its own thread. The loop lives for the whole test, so the async client
keeps its connection between calls exactly as it would in an application.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, Protocol, TypeVar

import pytest

from mailwire import AsyncSmtpClient, BulkResult, SmtpClient
from mailwire.auth import SmtpKnownAuthenticationType
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import Reply
from mailwire.results import ConnectionInfo, SendResult

T = TypeVar("T")


class Client(Protocol):
    """What tests use of a client, blocking."""

    def connect(self) -> ConnectionInfo: ...
    def send(self, message: Any, *, sender: str | None = None,
             recipients: Any = None, **options: Any) -> SendResult: ...
    def send_many(self, messages: Iterable[Any], **options: Any) -> list[BulkResult]: ...
    def send_mail(self, sender: str, recipients: str | Iterable[str], subject: str, body: str,
                  *, html: str | None = None) -> SendResult: ...
    def noop(self) -> Reply: ...
    def quit(self) -> None: ...
    def close(self) -> None: ...
    def validate_credentials(self) -> bool: ...
    @property
    def capabilities(self) -> Capabilities: ...
    @property
    def supported_authentication(self) -> SmtpKnownAuthenticationType: ...
    @property
    def connection_info(self) -> ConnectionInfo | None: ...
    @property
    def is_connected(self) -> bool: ...


class LoopThread:
    """An event loop running on a thread of its own until ``stop``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="test-async-client")
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(120)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class SyncClient:
    """``SmtpClient`` with ``send_many`` collected into a list."""

    def __init__(self, client: SmtpClient) -> None:
        self.inner = client

    def send_many(self, messages: Iterable[Any], **options: Any) -> list[BulkResult]:
        return list(self.inner.send_many(messages, **options))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.inner.quit()

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "inner":
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)


class AsyncDriven:
    """``AsyncSmtpClient`` driven from blocking code on a ``LoopThread``."""

    def __init__(self, client: AsyncSmtpClient, loop: LoopThread) -> None:
        object.__setattr__(self, "inner", client)
        object.__setattr__(self, "_loop", loop)

    inner: AsyncSmtpClient
    _loop: LoopThread

    def connect(self) -> ConnectionInfo:
        return self._loop.run(self.inner.connect())

    def send(self, message: Any, *, sender: str | None = None,
             recipients: Any = None, **options: Any) -> SendResult:
        return self._loop.run(self.inner.send(message, sender=sender, recipients=recipients,
                                              **options))

    def send_many(self, messages: Iterable[Any], **options: Any) -> list[BulkResult]:
        async def collect() -> list[BulkResult]:
            return [result async for result in self.inner.send_many(messages, **options)]

        return self._loop.run(collect())

    def send_mail(self, sender: str, recipients: str | Iterable[str], subject: str, body: str,
                  *, html: str | None = None) -> SendResult:
        return self._loop.run(self.inner.send_mail(sender, recipients, subject, body, html=html))

    def noop(self) -> Reply:
        return self._loop.run(self.inner.noop())

    def quit(self) -> None:
        self._loop.run(self.inner.quit())

    def close(self) -> None:
        self._loop.run(self.inner.close())

    def validate_credentials(self) -> bool:
        return self._loop.run(self.inner.validate_credentials())

    @property
    def capabilities(self) -> Capabilities:
        return self._loop.run(_awaited(self.inner.capabilities))

    @property
    def supported_authentication(self) -> SmtpKnownAuthenticationType:
        return self._loop.run(_awaited(self.inner.supported_authentication))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)

    def __enter__(self) -> AsyncDriven:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.quit()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


ClientFactory = Callable[..., Client]


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest) -> Iterator[ClientFactory]:
    """``make_client(*SmtpClient arguments)``: the sync client, or the async one made blocking."""
    made: list[Client] = []
    loop = LoopThread() if request.param == "async" else None

    def make(*args: Any, **kwargs: Any) -> Client:
        client: Client
        if loop is None:
            client = SyncClient(SmtpClient(*args, **kwargs))  # type: ignore[assignment]
        else:
            client = AsyncDriven(AsyncSmtpClient(*args, **kwargs), loop)  # type: ignore[assignment]
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            with contextlib.suppress(Exception):
                client.close()
        if loop is not None:
            loop.stop()
