"""An SMTP server with a real Kerberos acceptor whose last steps a test chooses.

No real server gets RFC 4752's last steps wrong on purpose, so this one does: it accepts the
client's AP-REQ with pyspnego's acceptor and the realm's service keytab (``KRB5_KTNAME``, set
by the caller), then plays one :class:`Ending`. It records what it received, and the client's
unwrapped security-layer answer. Plaintext SMTP on 127.0.0.1 (clients need
``allow_plaintext_credentials=True``), one connection at a time, stopped at the end of the test.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from spnego import ContextProxy


class Ending(enum.Enum):
    """What the server does once the client's AP-REQ has been accepted."""

    CORRECT = "offer no layer, accept the answer"
    SUCCESS_BEFORE_MUTUAL = "235 at once, without the AP-REP that proves the server"
    INTEGRITY_ONLY = "offer only the integrity layer"
    SHORT_OFFER = "a wrapped offer of 3 octets"
    UNWRAPPED_OFFER = "the offer in clear, not wrapped with the session key"
    MORE_AFTER_ANSWER = "another 334 after the client's security-layer answer"


@dataclass
class GssapiAcceptorServer:
    ending: Ending
    host: str = "127.0.0.1"
    port: int = 0
    received: list[bytes] = field(default_factory=list)
    #: The client's security-layer answer, unwrapped (CORRECT and MORE_AFTER_ANSWER).
    answer: bytes | None = None
    errors: list[str] = field(default_factory=list)
    _listener: socket.socket | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stream: Any = field(default=None, repr=False)
    _last: bytes = field(default=b"", repr=False)

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((self.host, 0))
        listener.listen(4)
        listener.settimeout(0.2)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name=f"gssapi-acceptor-{self.port}")
        self._thread.start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self) -> None:
        while self._listener is not None:
            try:
                connection, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with connection:
                connection.settimeout(10)
                try:
                    self._converse(connection.makefile("rwb", buffering=0))
                except EOFError:
                    if self.ending is Ending.CORRECT:
                        self.errors.append("the client closed the connection")
                    # else: the client gave up on a server that broke the mechanism and dropped
                    # the connection, as it should
                except Exception as error:  # recorded for the test to see
                    self.errors.append(repr(error))

    def _converse(self, stream: Any) -> None:
        import spnego

        self._stream = stream
        self._reply("220 acceptor.test ESMTP")
        while True:
            line = self._read()
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"EHLO":
                self._reply("250-acceptor.test")
                self._reply("250 AUTH GSSAPI")
            elif verb == b"QUIT":
                self._reply("221 bye")
                return
            elif verb == b"AUTH":
                parts = line.split(b" ")
                if len(parts) < 3:  # no initial response (too long for the AUTH line)
                    self._reply("334 ")
                    parts.append(self._read())
                acceptor = spnego.server(protocol="kerberos")
                token = acceptor.step(base64.b64decode(parts[2])) or b""
                self._finish(acceptor, token)
            else:
                self._reply("502 not here")

    def _reply(self, line: str) -> None:
        self._stream.write(f"{line}\r\n".encode())

    def _read(self) -> bytes:
        line = self._stream.readline()
        self.received.append(line)
        if not line:
            raise EOFError("client closed the connection")
        return bytes(line).rstrip(b"\r\n")

    def _cancelled(self) -> bool:
        """Read the client's next line; True (and 501) when it cancelled the exchange."""
        self._last = self._read()
        if self._last == b"*":
            self._reply("501 5.7.0 authentication cancelled")
            return True
        return False

    def _finish(self, context: ContextProxy, token: bytes) -> None:
        if self.ending is Ending.SUCCESS_BEFORE_MUTUAL:
            self._reply("235 2.7.0 welcome, whoever you are")
            return
        self._reply(f"334 {base64.b64encode(token).decode()}")
        if self._cancelled():
            return
        offer = {
            Ending.INTEGRITY_ONLY: b"\x02\x00\x10\x00",
            Ending.SHORT_OFFER: b"\x01\x00\x00",
        }.get(self.ending, b"\x01\x00\x00\x00")
        if self.ending is not Ending.UNWRAPPED_OFFER:
            offer = context.wrap(offer, encrypt=False).data
        self._reply(f"334 {base64.b64encode(offer).decode()}")
        if self._cancelled():
            return
        self.answer = context.unwrap(base64.b64decode(self._last)).data
        if self.ending is Ending.MORE_AFTER_ANSWER:
            self._reply("334 c29tZXRoaW5nIGVsc2U=")
            self._cancelled()
            return
        self._reply("235 2.7.0 Authentication successful")


@pytest.fixture
def gssapi_acceptor() -> Iterator[Callable[[Ending], GssapiAcceptorServer]]:
    """``gssapi_acceptor(Ending.X)``: a started server, stopped after the test."""
    started: list[GssapiAcceptorServer] = []

    def start(ending: Ending) -> GssapiAcceptorServer:
        server = GssapiAcceptorServer(ending)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        with contextlib.suppress(Exception):
            server.stop()
