"""``SmtpClient``: the blocking client, connecting on demand and reusing its connection.

Attributes may be changed at any time; they take effect on the next connection. Every operation
connects when there is no usable connection, so a client can be made and used right away.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable
from email.message import EmailMessage, Message
from typing import TypeVar

from mailwire.auth import Credentials, SmtpKnownAuthenticationType
from mailwire.conversation.requests import Flow
from mailwire.conversation.session import Session, SessionSettings
from mailwire.drivers import sync_driver
from mailwire.errors import AuthenticationError, ConnectionLostError, SmtpError, SmtpResponseError
from mailwire.message import MessageInput, prepare
from mailwire.protocol.capabilities import Capabilities
from mailwire.protocol.replies import Reply
from mailwire.results import ConnectionInfo, SendResult
from mailwire.security import SecurityOptions
from mailwire.transport.endpoint import Endpoint
from mailwire.transport.sync_connection import SyncConnection
from mailwire.transport.tls import default_context

T = TypeVar("T")
BAD_CREDENTIALS = 535
SERVICE_CLOSING = 421
REPLAYABLE = (Message, bytes, bytearray, memoryview, str, os.PathLike)


class SmtpClient:
    """A blocking SMTP client. Use it as a context manager to QUIT cleanly at the end."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        security: SecurityOptions | str = SecurityOptions.AUTO,
        *,
        timeout: float = 100.0,
        greeting_timeout: float = 10.0,
        oauth_token: str | None = None,
        allowed_authentication: SmtpKnownAuthenticationType = SmtpKnownAuthenticationType.ALL,
        allow_plaintext_credentials: bool = False,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.security = SecurityOptions.parse(security)
        self.timeout = timeout
        self.greeting_timeout = greeting_timeout
        self.oauth_token = oauth_token
        self.allowed_authentication = allowed_authentication
        self.allow_plaintext_credentials = allow_plaintext_credentials
        self.local_hostname = local_hostname
        self.ssl_context = ssl_context
        self._session: Session | None = None
        self._connection: SyncConnection | None = None
        self._authenticated = False

    # -- connection ----------------------------------------------------------------------------

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else self.security.default_port()

    def connect(self) -> ConnectionInfo:
        """Connect (again, if connected) and authenticate when credentials are set."""
        self.close()
        return self._ready(authenticated=True)

    @property
    def is_connected(self) -> bool:
        return self._session is not None and self._session.alive

    @property
    def connection_info(self) -> ConnectionInfo | None:
        """How the current connection was made, or None when not connected."""
        return self._session.info if self.is_connected and self._session else None

    @property
    def capabilities(self) -> Capabilities:
        """The server's EHLO extensions (connects if needed)."""
        self._ready(authenticated=False)
        assert self._session is not None
        return self._session.capabilities

    @property
    def supported_authentication(self) -> SmtpKnownAuthenticationType:
        """The mechanisms the server offers that mailwire implements (connects if needed)."""
        info = self._ready(authenticated=False)
        return info.supported_authentication

    def validate_credentials(self) -> bool:
        """Whether the server accepts the credentials: False on a 535 refusal."""
        self.close()
        try:
            self._ready(authenticated=True)
        except AuthenticationError as error:
            if error.code == BAD_CREDENTIALS:
                return False
            raise
        return True

    def noop(self) -> Reply:
        session = self._live_session(authenticated=False)
        return self._run(session.noop())

    def quit(self) -> None:
        """Say QUIT and close the connection; harmless when not connected."""
        session, connection = self._session, self._connection
        if session is not None and connection is not None and session.alive:
            sync_driver.run(session.quit(), connection)
        self.close()

    def close(self) -> None:
        """Close the connection without QUIT."""
        if self._connection is not None:
            self._connection.close()
        if self._session is not None:
            self._session.alive = False
        self._session = None
        self._connection = None
        self._authenticated = False

    def __enter__(self) -> SmtpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.quit()

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "not connected"
        user = f" user={self.username!r}" if self.username else ""
        return (f"<SmtpClient {self.host}:{self.effective_port} {self.security.name}{user} "
                f"{state}>")

    # -- sending -------------------------------------------------------------------------------

    def send(
        self,
        message: MessageInput,
        *,
        sender: str | None = None,
        recipients: str | Iterable[str] | None = None,
    ) -> SendResult:
        """Send one message; the envelope comes from its headers unless given."""
        prepared = prepare(message, sender, recipients)
        reused = self.is_connected
        session = self._live_session(authenticated=True)
        try:
            return self._run(session.transaction(prepared))
        except (ConnectionLostError, SmtpResponseError) as error:
            closed_meanwhile = (isinstance(error, ConnectionLostError)
                                or error.code == SERVICE_CLOSING)
            if not (reused and closed_meanwhile and not session.data_started
                    and isinstance(message, REPLAYABLE)):
                raise
        prepared = prepare(message, sender, recipients)
        return self._run(self._live_session(authenticated=True).transaction(prepared))

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
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join([recipients] if isinstance(recipients, str) else recipients)
        message["Subject"] = subject
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
        return self.send(message)

    # -- plumbing ------------------------------------------------------------------------------

    def _credentials(self) -> Credentials | None:
        if self.username is None:
            return None
        return Credentials(self.username, self.password, self.oauth_token)

    def _settings(self) -> SessionSettings:
        return SessionSettings(
            security=self.security,
            port=self.effective_port,
            timeout=self.timeout,
            greeting_timeout=self.greeting_timeout,
            local_hostname=self.local_hostname,
            credentials=self._credentials(),
            allowed_authentication=self.allowed_authentication,
            allow_plaintext_credentials=self.allow_plaintext_credentials,
        )

    def _live_session(self, *, authenticated: bool) -> Session:
        """The current session if the server is still there, else a fresh one."""
        if self._connection is not None and not self._connection.is_quiet():
            self.close()
        self._ready(authenticated=authenticated)
        assert self._session is not None
        return self._session

    def _ready(self, *, authenticated: bool) -> ConnectionInfo:
        if not self.is_connected:
            self.close()
            context = self.ssl_context or default_context()
            connection = SyncConnection(Endpoint(self.host, self.effective_port, context))
            session = Session(self._settings())
            sync_driver.run(session.open(), connection)
            self._session, self._connection = session, connection
        assert self._session is not None and self._session.info is not None
        if authenticated and not self._authenticated and self._session.settings.credentials:
            self._run(self._session.authenticate())
            self._authenticated = True
        assert self._session.info is not None
        return self._session.info

    def _run(self, flow: Flow[T]) -> T:
        session, connection = self._session, self._connection
        assert session is not None and connection is not None
        try:
            return sync_driver.run(flow, connection)
        except SmtpError:
            if not session.alive:
                self.close()
            raise
