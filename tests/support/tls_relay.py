"""A TLS man in the middle that the client trusts: for showing what channel binding catches.

``TlsRelay`` accepts TLS connections with its own certificate (signed by a CA the client
trusts, as a corporate TLS-inspecting proxy's is), opens a TLS connection to the real server
for each, and copies bytes both ways unchanged. Everything above TLS passes through; only the
certificate the client sees differs from the server's.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from types import TracebackType

__all__ = ["TlsRelay"]


class TlsRelay:
    """``with TlsRelay(target, relay_context, upstream_context, upstream_name) as relay:``"""

    def __init__(self, target: tuple[str, int], relay_context: ssl.SSLContext,
                 upstream_context: ssl.SSLContext, upstream_name: str) -> None:
        self._target = target
        self._relay_context = relay_context
        self._upstream_context = upstream_context
        self._upstream_name = upstream_name
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.port: int = self._listener.getsockname()[1]

    def __enter__(self) -> TlsRelay:
        self._spawn(self._accept)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def _spawn(self, target: object, *args: object) -> None:
        assert callable(target)
        thread = threading.Thread(target=target, args=args, daemon=True, name="tls-relay")
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, raw)

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            client = self._relay_context.wrap_socket(raw, server_side=True)
        except OSError:
            raw.close()
            return
        try:
            upstream = self._upstream_context.wrap_socket(
                socket.create_connection(self._target, timeout=10),
                server_hostname=self._upstream_name)
        except OSError:
            client.close()
            return
        with client, upstream:
            self._copy(client, upstream)

    def _copy(self, one: ssl.SSLSocket, other: ssl.SSLSocket) -> None:
        """Bytes both ways, one thread per connection (an SSL socket is not used from two)."""
        while not self._stopping.is_set():
            ready = [sock for sock in (one, other) if sock.pending()]
            if not ready:
                ready, _, _ = select.select([one, other], [], [], 0.2)
            for sock in ready:
                try:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (other if sock is one else one).sendall(data)
                except ssl.SSLWantReadError:
                    continue
                except OSError:
                    return
