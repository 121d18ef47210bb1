"""``AsyncSmtpClient``: the asyncio client, running the same ``ClientCore`` flows as
``SmtpClient`` on the running event loop (no thread, no nested loop).

Properties that may need to connect (``capabilities``, ``supported_authentication``) return
awaitables: ``await client.capabilities``. One client may be shared by any number of tasks of
its loop: their messages share the connection's pipeline, and their bytes never interleave.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import cached_property
from typing import TypeVar

from mailwire import bulk_async
from mailwire.auth import SmtpKnownAuthenticationType
from mailwire.bulk_sync import Callback, Callbacks, Progress
from mailwire.conversation.bulk import DEFAULT_MAX_IN_FLIGHT, BulkOptions
from mailwire.conversation.requests import Flow
from mailwire.drivers.async_driver import AsyncRunner
from mailwire.dsn import DeliveryNotificationOptions
from mailwire.message import MessageInput, simple_message
from mailwire.options import ClientOptions
from mailwire.outgoing import Outgoing, Recipients, for_send
from mailwire.pickup import SmtpDeliveryMethod, write_all
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import Reply
from mailwire.results import BulkResult, ConnectionInfo, SendResult
from mailwire.transport.async_connection import AsyncConnection

T = TypeVar("T")


class AsyncSmtpClient(ClientOptions):
    """An asyncio SMTP client. Use ``async with`` to QUIT cleanly at the end."""

    @cached_property
    def _connection(self) -> AsyncConnection:
        return AsyncConnection()

    @cached_property
    def _runner(self) -> AsyncRunner:
        return AsyncRunner(self._core, self._connection)

    async def connect(self) -> ConnectionInfo:
        """Connect (again, if connected) and authenticate when credentials are set."""
        return await self._drive(self._core.connect())

    @property
    def is_connected(self) -> bool:
        return self._core.connected

    @property
    def connection_info(self) -> ConnectionInfo | None:
        """How the current connection was made, or None when not connected."""
        session = self._core.session
        return session.info if session is not None and session.state.live else None

    @property
    def capabilities(self) -> Awaitable[Capabilities]:
        """The server's EHLO extensions (connects if needed): ``await client.capabilities``."""
        return self._info_part(lambda info: info.capabilities)

    @property
    def supported_authentication(self) -> Awaitable[SmtpKnownAuthenticationType]:
        """The offered mechanisms mailwire implements: ``await client.supported_authentication``."""
        return self._info_part(lambda info: info.supported_authentication)

    async def validate_credentials(self) -> bool:
        return await self._drive(self._core.validate_credentials())

    async def noop(self) -> Reply:
        return await self._drive(self._core.noop())

    async def send(
        self,
        message: MessageInput | Outgoing,
        *,
        sender: str | None = None,
        recipients: Recipients | None = None,
        notify: DeliveryNotificationOptions | str | None = None,
        ret: str | None = None,
        envid: str | None = None,
        require_tls: bool = False,
        mail_options: Iterable[str] = (),
        rcpt_options: Iterable[str] = (),
    ) -> SendResult:
        """Send one message; see ``SmtpClient.send``. Safe to call from several tasks at
        once; a cancelled call never affects another call's message."""
        outgoing = for_send(message, sender, recipients, notify, ret, envid, require_tls,
                            mail_options, rcpt_options)
        if self.delivery_method is SmtpDeliveryMethod.SPECIFIED_PICKUP_DIRECTORY:
            return await asyncio.to_thread(self._to_pickup, outgoing)
        return await self._runner.send(self._core.ticket(outgoing,
                                                         self.default_sender,
                                                         self.dkim_signer))

    async def send_mail(
        self,
        sender: str,
        recipients: str | Iterable[str],
        subject: str,
        body: str,
        *,
        html: str | None = None,
    ) -> SendResult:
        return await self.send(simple_message(sender, recipients, subject, body, html))

    def send_many(
        self,
        messages: Iterable[MessageInput | Outgoing],
        *,
        connections: int = 1,
        max_attempts: int = 4,
        retry_delay: float = 0.5,
        messages_per_connection: int | None = None,
        rate_limit: float | None = None,
        progress: Progress | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        on_sent: Callback | None = None,
        on_failed: Callback | None = None,
    ) -> AsyncIterator[BulkResult]:
        """Send many messages; ``async for result in client.send_many(...)``. See
        ``SmtpClient.send_many``; several connections run as tasks on this loop."""
        options = BulkOptions(connections, max_attempts, retry_delay,
                              messages_per_connection=messages_per_connection,
                              rate_limit=rate_limit, max_in_flight=max_in_flight,
                              default_sender=self.default_sender,
                              dkim_signer=self.dkim_signer)
        callbacks = Callbacks(progress, on_sent, on_failed)
        if self.delivery_method is SmtpDeliveryMethod.SPECIFIED_PICKUP_DIRECTORY:
            written = write_all(messages, self._prepared, self.pickup_directory_location)
            return bulk_async.reported(bulk_async.from_thread(written), messages, callbacks)
        return bulk_async.send_many(self._runner, self._session_settings, messages, options,
                                    callbacks)

    async def quit(self) -> None:
        await self._drive(self._core.quit())

    async def close(self) -> None:
        await self._runner.drop()

    async def __aenter__(self) -> AsyncSmtpClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.quit()

    def __repr__(self) -> str:
        return self._describe("AsyncSmtpClient", self.is_connected)

    async def _info_part(self, part: Callable[[ConnectionInfo], T]) -> T:
        return part(await self._drive(self._core.info()))

    async def _drive(self, flow: Flow[T]) -> T:
        return await self._runner.run(flow)
