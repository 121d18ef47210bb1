"""``SmtpClient``: the blocking client. Every method runs a flow of ``ClientCore``.

Operations connect on demand and reuse the connection; see ``ClientOptions`` for the settings.
One client may be shared by any number of threads: their messages share the connection's
pipeline, and their bytes never interleave.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import TypeVar

from mailwire import bulk_sync
from mailwire.auth import SmtpKnownAuthenticationType
from mailwire.bulk_sync import Callback, Callbacks, Progress
from mailwire.conversation.bulk import DEFAULT_MAX_IN_FLIGHT, BulkOptions
from mailwire.conversation.requests import Flow
from mailwire.drivers.sync_driver import SyncRunner
from mailwire.dsn import DeliveryNotificationOptions
from mailwire.message import MessageInput, simple_message
from mailwire.options import ClientOptions
from mailwire.outgoing import Outgoing, Recipients, for_send
from mailwire.pickup import SmtpDeliveryMethod, write_all
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import Reply
from mailwire.results import BulkResult, ConnectionInfo, SendResult
from mailwire.transport.sync_connection import SyncConnection

T = TypeVar("T")
_MAKING = threading.Lock()


class SmtpClient(ClientOptions):
    """A blocking SMTP client. Use it as a context manager to QUIT cleanly at the end."""

    @cached_property
    def _connection(self) -> SyncConnection:
        return SyncConnection()

    @property
    def _runner(self) -> SyncRunner:
        runner: SyncRunner | None = self.__dict__.get("_runner_made")
        if runner is None:
            with _MAKING:  # two threads' first calls must not make two runners
                runner = self.__dict__.get("_runner_made")
                if runner is None:
                    runner = SyncRunner(self._core, self._connection)
                    self.__dict__["_runner_made"] = runner
        return runner

    def connect(self) -> ConnectionInfo:
        """Connect (again, if connected) and authenticate when credentials are set."""
        return self._drive(self._core.connect())

    @property
    def is_connected(self) -> bool:
        return self._core.connected

    @property
    def connection_info(self) -> ConnectionInfo | None:
        """How the current connection was made, or None when not connected."""
        session = self._core.session
        return session.info if session is not None and session.state.live else None

    @property
    def capabilities(self) -> Capabilities:
        """The server's EHLO extensions (connects if needed)."""
        return self._drive(self._core.info()).capabilities

    @property
    def supported_authentication(self) -> SmtpKnownAuthenticationType:
        """The mechanisms the server offers that mailwire implements (connects if needed)."""
        return self._drive(self._core.info()).supported_authentication

    def validate_credentials(self) -> bool:
        """Whether the server accepts the credentials (on a fresh connection); False on 535."""
        return self._drive(self._core.validate_credentials())

    def noop(self) -> Reply:
        return self._drive(self._core.noop())

    def send(
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
        """Send one message: an ``email.message.Message``, bytes, a ``pathlib.Path``, a binary
        file or an iterable of bytes chunks. The envelope comes from the headers unless given;
        ``recipients`` may hold ``Recipient`` objects with their own notifications.

        ``notify``, ``ret`` and ``envid`` ask for delivery status notifications (RFC 3461;
        ``notify`` and ``ret`` default to the client's ``delivery_notification_options`` and
        ``dsn_return``); ``require_tls`` sends with REQUIRETLS (RFC 8689) or refuses before
        sending; ``mail_options`` and ``rcpt_options`` add MAIL and RCPT parameters. See
        ``Outgoing``; an ``Outgoing`` (as ``send_many`` takes) may be given instead of all these.

        Safe to call from several threads at once: their messages share the pipeline."""
        outgoing = for_send(message, sender, recipients, notify, ret, envid, require_tls,
                            mail_options, rcpt_options)
        if self.delivery_method is SmtpDeliveryMethod.SPECIFIED_PICKUP_DIRECTORY:
            return self._to_pickup(outgoing)
        return self._runner.send(self._core.ticket(outgoing,
                                                       self.default_sender,
                                                       self.dkim_signer))

    def send_mail(
        self,
        sender: str,
        recipients: str | Iterable[str],
        subject: str,
        body: str,
        *,
        html: str | None = None,
    ) -> SendResult:
        """Build a simple message (text, optionally with an HTML alternative) and send it."""
        return self.send(simple_message(sender, recipients, subject, body, html))

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
        processes: int = 1,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        on_sent: Callback | None = None,
        on_failed: Callback | None = None,
    ) -> Iterator[BulkResult]:
        """Send many messages, pipelined where the server allows; results as they complete.

        ``messages`` may be any iterable (a generator is read as it goes) of messages or
        ``Outgoing`` (a message with its envelope). With one connection results come in input
        order, on this client's connection; with several, in completion order on new
        connections (``BulkResult.index`` is the input position). Transient failures are retried
        ``max_attempts`` times in all, waiting ``retry_delay`` seconds, doubled each time;
        ``rate_limit`` caps messages per second over all connections (per process when
        ``processes`` > 1). ``processes`` spreads the connections over that many worker
        processes, to use more than one core; the messages must then be picklable.
        ``max_in_flight`` is how many messages may be written on one connection before their
        replies come back (with CHUNKING); it is also the most messages whose outcome can be
        unknown when a connection drops. ``1`` sends one message at a time. ``on_sent`` and
        ``on_failed`` are called with each ``BulkResult`` as it comes (Aspose's
        ``SucceededSending``/``FailedSending``), beside the results iterated.
        """
        options = BulkOptions(connections, max_attempts, retry_delay,
                              messages_per_connection=messages_per_connection,
                              rate_limit=rate_limit, max_in_flight=max_in_flight,
                              default_sender=self.default_sender,
                              dkim_signer=self.dkim_signer)
        callbacks = Callbacks(progress, on_sent, on_failed)
        if self.delivery_method is SmtpDeliveryMethod.SPECIFIED_PICKUP_DIRECTORY:
            return callbacks.reported(write_all(messages, self._prepared,
                                                self.pickup_directory_location), messages)
        return bulk_sync.send_many(self._runner, self._session_settings, messages, options,
                                   callbacks, processes)

    def quit(self) -> None:
        """Say QUIT and close the connection; harmless when not connected."""
        self._drive(self._core.quit())

    def close(self) -> None:
        """Close the connection without QUIT."""
        self._runner.drop()

    def __enter__(self) -> SmtpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.quit()

    def __repr__(self) -> str:
        return self._describe("SmtpClient", self.is_connected)

    def _drive(self, flow: Flow[T]) -> T:
        return self._runner.run(flow)
