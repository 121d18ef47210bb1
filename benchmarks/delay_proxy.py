"""A TCP relay that delays every byte by a fixed time in each direction: a far-away server on
loopback (containers have no kernel traffic shaping).

``DelayProxy(target, one_way=0.010)`` listens on 127.0.0.1 and, for each connection, connects
to ``target``; what either side sends reaches the other ``one_way`` seconds later, in order,
whatever its size. A round trip therefore costs ``2 * one_way``. An end of stream is passed on
after the bytes before it, and a reset or a closed peer ends both sides.

    with DelayProxy(("127.0.0.1", 25), one_way=0.010) as proxy:
        client = SmtpClient(proxy.host, proxy.port, ...)

It runs an event loop on a thread of its own; ``start``/``stop`` (or ``with``) manage it.
``python -m benchmarks.delay_proxy HOST PORT [--rtt-ms 20]`` runs one in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from collections import deque


class DelayProxy:
    """A relay to ``target`` adding ``one_way`` seconds in each direction."""

    def __init__(self, target: tuple[str, int], *, one_way: float = 0.010) -> None:
        self.target = target
        self.one_way = one_way
        self.host = "127.0.0.1"
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        # asyncio holds tasks weakly, and a stream's protocol holds its reader weakly: a relay
        # whose both directions wait for bytes is otherwise garbage and gets destroyed mid-way.
        self._relays: set[asyncio.Task[None]] = set()

    def start(self) -> DelayProxy:
        self._thread = threading.Thread(target=self._serve, name="delay-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay proxy did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(
            asyncio.start_server(self._relay, self.host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            while tasks := asyncio.all_tasks(loop):
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def _relay(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        for writer in (client_writer, server_writer):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                import socket

                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(asyncio.CancelledError):  # only stop() cancels: end quietly
            await asyncio.gather(self._pump(client_reader, server_writer),
                                 self._pump(server_reader, client_writer),
                                 return_exceptions=True)
        for writer in (client_writer, server_writer):
            with contextlib.suppress(Exception):
                writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read as it comes; write each piece ``one_way`` seconds after it arrived, in order."""
        pending: deque[tuple[float, bytes]] = deque()
        arrived = asyncio.Event()
        finished = False

        async def deliver() -> None:
            while True:
                while not pending:
                    if finished:
                        with contextlib.suppress(Exception):
                            writer.write_eof()
                        return
                    arrived.clear()
                    await arrived.wait()
                due, data = pending[0]
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                pending.popleft()
                writer.write(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while data := await reader.read(256 * 1024):
                pending.append((time.monotonic() + self.one_way, data))
                arrived.set()
        except (ConnectionError, OSError):
            pass
        finally:
            finished = True
            arrived.set()
        with contextlib.suppress(Exception):
            await delivering


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.delay_proxy")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    arguments = parser.parse_args()
    with DelayProxy((arguments.host, arguments.port), one_way=arguments.rtt_ms / 2000) as proxy:
        print(f"listening on {proxy.host}:{proxy.port}, {arguments.rtt_ms:g} ms round trip")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
