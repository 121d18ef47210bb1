"""A relay that holds back a server's greeting, as a tarpit or Postfix's postscreen greet pause
does: everything the server sends in the first ``pause`` seconds of a connection reaches the
client only when the pause is over; the client's bytes reach the server at once (a client that
talks first, a TLS ClientHello, is answered by the server as it would answer it).

``greet_pause(target, pause)`` (fixture) starts one on 127.0.0.1; ``.port`` is where to connect.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest


class GreetPause:
    def __init__(self, target: tuple[str, int], pause: float) -> None:
        self.target = target
        self.pause = pause
        self.host = "127.0.0.1"
        self._listener = socket.socket()
        self._listener.bind((self.host, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        opened = time.monotonic()
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pump, args=(client, server, 0.0), daemon=True).start()
        self._pump(server, client, opened + self.pause)

    def _pump(self, source: socket.socket, sink: socket.socket, hold_until: float) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                delay = hold_until - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def greet_pause() -> Iterator[Callable[[tuple[str, int], float], GreetPause]]:
    started: list[GreetPause] = []

    def start(target: tuple[str, int], pause: float) -> GreetPause:
        relay = GreetPause(target, pause)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.stop()
