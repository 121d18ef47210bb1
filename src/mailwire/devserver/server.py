"""``DevServer``: a real SMTP server (aiosmtpd) on a background thread, for demos and tests.

Owns running aiosmtpd's ``SMTP`` protocol on its own event loop and thread, the
policy it applies (TLS mode, AUTH, refused senders and recipients), and keeping
what it received: in memory as ``ReceivedMessage`` records and, optionally, as
``.eml`` files in a folder (made 0700 when it is created; each file 0600: captured mail is
someone's mail).

What a client sees (aiosmtpd 1.4.6, as configured here):

* Greeting ``220 <hostname> ESMTP mailwire devserver``.
* EHLO lists, in this order: ``PIPELINING`` (added here; aiosmtpd reads commands
  one line at a time from a buffer, so pipelined commands work, but it does not
  advertise it itself; ``pipelining=False`` leaves it out), ``SIZE <n>`` (only when
  ``data_size_limit`` is set; a larger ``MAIL ... SIZE=`` gets ``552``, more DATA
  than that gets ``552`` after the final dot), ``8BITMIME`` (always: data is taken
  as bytes and never checked), ``SMTPUTF8`` (when ``smtputf8``), ``STARTTLS``
  (STARTTLS mode, before the upgrade), ``AUTH <mechanisms>`` and ``HELP``.
* Never: ``CHUNKING``/``BDAT``, ``DSN``, ``ENHANCEDSTATUSCODES`` (its replies mix
  plain and enhanced codes), ``REQUIRETLS``.  Any MAIL parameter but ``SIZE``,
  ``BODY=7BIT|8BITMIME`` and ``SMTPUTF8`` gets ``555``, as does every RCPT parameter.
* AUTH is listed only once the connection is encrypted when ``auth_require_tls``
  (``AUTH`` before that gets ``538 5.7.11``).  aiosmtpd only counts STARTTLS as
  encryption, so for implicit TLS the server tells it not to require it.  aiosmtpd
  sorts the mechanisms and would print an empty ``AUTH`` line when there are none;
  the server puts them in the configured order and drops an empty line.  Mechanism
  names after ``AUTH`` are matched case-sensitively (``AUTH plain`` gets ``504``).  The
  built-in PLAIN ignores the authorization identity and refuses ``=`` as an empty
  initial response; the built-in LOGIN prompts ``User Name\\0`` and ``Password\\0``.
* ``require_starttls`` answers ``530`` to everything but EHLO, NOOP, STARTTLS, QUIT
  until TLS is up.  The null sender ``MAIL FROM:<>`` is accepted and recorded as ``""``.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from mailwire.devserver.auth import (
    ALL_MECHANISMS,
    KNOWN_MECHANISMS,
    AuthenticatedUser,
    SaslMechanisms,
    validate_mechanisms,
)
from mailwire.devserver.certificates import Certificates, write_private

_log = logging.getLogger(__name__)
AIOSMTPD_LOGGER = "mail.log"
# aiosmtpd logs every client's mistake ("unrecognised: ...") as a warning; with no handler
# Python's last resort would print it on standard error of whatever program runs the server.
# A handler of its own keeps that out; the records still reach a program's own logging.
logging.getLogger(AIOSMTPD_LOGGER).addHandler(logging.NullHandler())

DEFAULT_DATA_SIZE_LIMIT = 32 * 1024 * 1024
GREETING_IDENT = "ESMTP mailwire devserver"
START_TIMEOUT = 5.0
NULL_SENDER = "<>"


class TlsMode(enum.Enum):
    """How the server offers TLS: not at all, by STARTTLS, or from the first byte."""

    NONE = "none"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted transaction, as the server saw it.

    ``data`` is the message exactly as received after un-dot-stuffing, CRLFs kept
    (aiosmtpd's ``envelope.original_content``).  ``mail_from`` is ``""`` for the null
    sender.  The options are upper-cased by aiosmtpd.  ``peer`` is the client's address
    and port.  ``helo_name`` is the name the client gave in EHLO/HELO, ``saved_as`` the
    ``.eml`` file when the server keeps a maildir.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]
    rcpt_options: tuple[str, ...]
    peer: tuple[str, int]
    tls_version: str | None
    auth_mechanism: str | None
    auth_user: str | None
    helo_name: str | None = None
    saved_as: Path | None = None


class _Handler(SaslMechanisms):
    """The aiosmtpd handler: the server's policy, and the hand-off of each message."""

    def __init__(
        self,
        *,
        credentials: Mapping[str, str],
        tokens: Mapping[str, str],
        mechanisms: tuple[str, ...],
        pipelining: bool,
        refuse_senders: Collection[str],
        refuse_recipients: Collection[str],
        deliver: Callable[[ReceivedMessage], None],
        channel_binding_certificate: str | None = None,
    ) -> None:
        super().__init__(credentials, tokens, channel_binding_certificate)
        self._mechanisms = mechanisms
        self._pipelining = pipelining
        self._refused_senders = {address.lower() for address in refuse_senders}
        self._refused_recipients = {address.lower() for address in refuse_recipients}
        self._deliver = deliver

    async def handle_EHLO(
        self, smtp: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        keywords = [line[4:] for line in responses]
        if any(keyword.startswith("AUTH") for keyword in keywords):
            keywords = [keyword for keyword in keywords if not keyword.startswith("AUTH")]
            offered = self.offered_on(smtp, self._mechanisms)
            if offered:
                keywords.insert(-1, "AUTH " + " ".join(offered))
        if self._pipelining:
            keywords.insert(1, "PIPELINING")
        last = len(keywords) - 1
        return [f"250{' ' if i == last else '-'}{keyword}" for i, keyword in enumerate(keywords)]

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self._refused_senders:
            return f"550 5.7.1 <{address}>: Sender address rejected"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self._refused_recipients:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        user = session.auth_data if isinstance(session.auth_data, AuthenticatedUser) else None
        ssl_object = smtp.transport.get_extra_info("ssl_object") if smtp.transport else None
        self._deliver(
            ReceivedMessage(
                mail_from="" if envelope.mail_from == NULL_SENDER else envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=envelope.original_content or b"",
                mail_options=tuple(envelope.mail_options),
                rcpt_options=tuple(envelope.rcpt_options),
                peer=_peer_address(session),
                tls_version=ssl_object.version() if ssl_object else None,
                auth_mechanism=user.mechanism if user else None,
                auth_user=user.user if user else None,
                helo_name=session.host_name,
            )
        )
        return "250 OK"

    async def handle_exception(self, error: Exception) -> str:
        """aiosmtpd's fallback would log a failed STARTTLS handshake as a server error."""
        if isinstance(error, TLSSetupException):
            _log.info("STARTTLS handshake failed: %r", error.__cause__)
        else:
            _log.error("error while serving a client", exc_info=error)
        return f"451 4.3.0 Local error: {type(error).__name__}"


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket. Made with an explicit IPPROTO_TCP so that asyncio turns Nagle's
    algorithm off on accepted connections: pipelined replies must not wait for an ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError:
        listener.close()
        raise
    return listener


def _log_client_failures_quietly(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A client failing or dropping a TLS handshake is its business, not a server error."""
    error = context.get("exception")
    if isinstance(error, ssl.SSLError | ConnectionError | asyncio.CancelledError):
        _log.info("%s: %r", context.get("message"), error)
    else:
        loop.default_exception_handler(context)


def _peer_address(session: Session) -> tuple[str, int]:
    """aiosmtpd annotates ``session.peer`` as ``str``; it is the socket's peer name tuple."""
    peername: Any = session.peer
    return (str(peername[0]), int(peername[1])) if peername else ("", 0)


class DevServer:
    """An SMTP server on a background thread; use ``with DevServer(...) as server:``.

    ``port=0`` picks a free port; ``host`` and ``port`` tell the bound address once
    started.  ``credentials=None`` offers no AUTH at all.  ``ssl_context`` replaces
    ``certificates.server_context()`` (to pin TLS versions, say); SCRAM-*-PLUS is offered
    only when ``certificates`` is given (the server's own certificate is what the client
    binds to).  ``client_ca_file`` makes the server ask for client certificates issued by
    that CA (needed for EXTERNAL; it changes the given ``ssl_context``).  With ``maildir``,
    every message is also written there as ``<UTC time>-<sequence>.eml``, so names
    sort in arrival order.  ``on_message`` runs on the server thread for each message,
    after it is kept; if it raises, the client gets ``451`` and the error is logged.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "localhost",
        tls: TlsMode = TlsMode.NONE,
        certificates: Certificates | None = None,
        ssl_context: ssl.SSLContext | None = None,
        client_ca_file: Path | str | None = None,
        credentials: Mapping[str, str] | None = None,
        tokens: Mapping[str, str] | None = None,
        mechanisms: tuple[str, ...] = ALL_MECHANISMS,
        auth_require_tls: bool = True,
        require_starttls: bool = False,
        maildir: Path | None = None,
        data_size_limit: int | None = DEFAULT_DATA_SIZE_LIMIT,
        smtputf8: bool = True,
        pipelining: bool = True,
        refuse_recipients: Collection[str] = (),
        refuse_senders: Collection[str] = (),
        on_message: Callable[[ReceivedMessage], object] | None = None,
    ) -> None:
        if ssl_context is None and certificates is not None:
            ssl_context = certificates.server_context()
        if tls is not TlsMode.NONE and ssl_context is None:
            raise ValueError(f"tls={tls} needs certificates or an ssl_context")
        if require_starttls and tls is not TlsMode.STARTTLS:
            raise ValueError("require_starttls only makes sense with tls=TlsMode.STARTTLS")
        if client_ca_file is not None:
            if ssl_context is None:
                raise ValueError("client_ca_file needs TLS (certificates or an ssl_context)")
            ssl_context.verify_mode = ssl.CERT_OPTIONAL
            ssl_context.load_verify_locations(client_ca_file)
        if "EXTERNAL" in (name.upper() for name in mechanisms) and client_ca_file is None:
            raise ValueError("EXTERNAL needs client_ca_file (the CA of the client certificates)")
        self._host = host
        self._requested_port = port
        self._bound_port: int | None = None
        self._hostname = hostname
        self._tls = tls
        self._ssl_context = ssl_context
        self._offers_auth = credentials is not None
        self._mechanisms = validate_mechanisms(mechanisms) if self._offers_auth else ()
        self._auth_require_tls = auth_require_tls and tls is not TlsMode.IMPLICIT
        self._require_starttls = require_starttls
        self._maildir = maildir
        self._data_size_limit = data_size_limit
        self._smtputf8 = smtputf8
        self._on_message = on_message
        self._handler = _Handler(
            credentials=credentials or {},
            tokens=tokens or {},
            mechanisms=self._mechanisms,
            pipelining=pipelining,
            refuse_senders=refuse_senders,
            refuse_recipients=refuse_recipients,
            deliver=self._deliver,
            channel_binding_certificate=(
                certificates.cert_file.read_text() if certificates is not None else None),
        )
        self._messages: list[ReceivedMessage] = []
        self._arrived = threading.Condition()
        self._sequence = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("the server has not been started")
        return self._bound_port

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self.port

    @property
    def tls(self) -> TlsMode:
        return self._tls

    @property
    def maildir(self) -> Path | None:
        return self._maildir

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._arrived:
            return list(self._messages)

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived; all of them, or TimeoutError."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} messages within {timeout}s, got {len(self._messages)}"
                )
            return list(self._messages)

    def clear(self) -> None:
        with self._arrived:
            self._messages.clear()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        if self._maildir is not None:
            self._maildir.mkdir(mode=0o700, parents=True, exist_ok=True)
        listener = _listen(self._host, self._requested_port)
        self._bound_port = listener.getsockname()[1]
        loop = asyncio.new_event_loop()
        self._loop = loop
        serving = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(loop, listener, serving),
            name=f"devserver:{self._bound_port}",
        )
        self._thread.daemon = True
        self._thread.start()
        if not serving.wait(START_TIMEOUT):
            raise RuntimeError("the development server did not start")

    def stop(self) -> None:
        """Close the listener and every open connection; safe to call twice."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT)
        self._thread = None
        self._loop = None

    def __enter__(self) -> DevServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self._host}:{self._bound_port}" if self._bound_port else "not started"
        return f"DevServer({where}, tls={self._tls.value})"

    def _new_protocol(self) -> SMTP:
        return SMTP(
            self._handler,
            loop=self._loop,
            hostname=self._hostname,
            ident=GREETING_IDENT,
            tls_context=self._ssl_context if self._tls is TlsMode.STARTTLS else None,
            require_starttls=self._require_starttls,
            auth_require_tls=self._auth_require_tls,
            auth_exclude_mechanism=[m for m in KNOWN_MECHANISMS if m not in self._mechanisms],
            authenticator=self._handler.authenticate_password,
            data_size_limit=self._data_size_limit,
            enable_SMTPUTF8=self._smtputf8,
        )

    def _serve(self, loop: asyncio.AbstractEventLoop, listener: socket.socket,
               serving: threading.Event) -> None:
        """The server thread: serve on ``listener`` until ``stop``."""
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_log_client_failures_quietly)
        ssl_context = self._ssl_context if self._tls is TlsMode.IMPLICIT else None
        server = loop.run_until_complete(
            loop.create_server(self._new_protocol, sock=listener, ssl=ssl_context)
        )
        serving.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            connections = asyncio.all_tasks(loop)
            for task in connections:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*connections, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def _deliver(self, message: ReceivedMessage) -> None:
        sequence = next(self._sequence)
        if self._maildir is not None:
            message = replace(message, saved_as=self._save(message.data, sequence))
        with self._arrived:
            self._messages.append(message)
            self._arrived.notify_all()
        if self._on_message is not None:
            self._on_message(message)

    def _save(self, data: bytes, sequence: int) -> Path:
        assert self._maildir is not None
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{sequence:06d}.eml"
        partial = self._maildir / f".{name}.part"
        write_private(partial, data)
        return partial.replace(self._maildir / name)
