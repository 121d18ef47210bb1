"""The web-like row: 8 threads each sending one message at a time, STARTTLS + AUTH.

This is what a web application does on every request that sends mail. Three clients, each in
a fresh process, against the same ``DevServer`` (STARTTLS required, AUTH PLAIN/SCRAM):

- ``pool``: one ``SmtpPool`` (8 connections) shared by the threads;
- ``client-per-message``: a new ``SmtpClient`` for every message (connect, TLS, AUTH, QUIT);
- ``smtplib-per-message``: the same with ``smtplib.SMTP`` + ``starttls`` + ``login``.

``python -m benchmarks.pool_web [--messages 2000] [--threads 8]`` runs it alone;
``python -m benchmarks.run`` runs it with the other rows. Every run checks that the server
received exactly what the client reported sent.

The 20 ms round-trip variant runs the same clients through ``benchmarks.delay_proxy``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from benchmarks.delay_proxy import DelayProxy
from mailwire import SmtpClient, SmtpPool
from mailwire.devserver import Certificates, DevServer, TlsMode

USER, PASSWORD = "bench", "bench-password"
CLIENTS = ("pool", "client-per-message", "smtplib-per-message")
MESSAGE = (b"From: app@example.com\r\nTo: user@example.org\r\nSubject: web request\r\n\r\n"
           + b"Thanks for signing up.\r\n" * 20)
TARGET_AT_20MS = 5.0


@contextlib.contextmanager
def _delayed(server: DevServer) -> Iterator[tuple[str, int]]:
    with DelayProxy((server.host, server.port), one_way=0.010) as proxy:
        yield proxy.host, proxy.port


def wan_endpoint(server: DevServer) -> AbstractContextManager[tuple[str, int]] | None:
    """The 20 ms RTT variant: (host, port) of a delay proxy in front of ``server``."""
    return _delayed(server)


def run(messages: int = 2000, threads: int = 8, directory: Path | None = None) -> dict[str, Any]:
    """Every client against one STARTTLS + AUTH server on loopback (and through the delay
    proxy when there is one); messages per second and the pool's ratios."""
    with contextlib.ExitStack() as stack:
        if directory is None:
            import tempfile
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        certificates = Certificates.generate(directory / "pool-web-certificates")
        server = stack.enter_context(DevServer(tls=TlsMode.STARTTLS, certificates=certificates,
                                               credentials={USER: PASSWORD}))
        paths = {"loopback": ("127.0.0.1", server.port)}
        wan = wan_endpoint(server)
        if wan is not None:
            paths["20 ms RTT"] = stack.enter_context(wan)
        rows: dict[str, Any] = {"messages": messages, "threads": threads, "paths": {}}
        for path, (host, port) in paths.items():
            rows["paths"][path] = {}
            for client in CLIENTS:
                server.clear()
                measured = _in_process(client, host, port, str(certificates.ca_file),
                                       messages, threads)
                received = len(server.messages)
                measured["count_ok"] = received == measured["sent"]
                rows["paths"][path][client] = measured
        if wan is None:
            rows["skipped"] = "20 ms RTT: benchmarks/delay_proxy.py is not on this branch"
        return rows


def render(rows: dict[str, Any]) -> str:
    lines = [f"web-like sending: {rows['threads']} threads, {rows['messages']:,} messages, "
             "one at a time, STARTTLS + AUTH"]
    for path, clients in rows["paths"].items():
        pool = clients["pool"]["msg_per_s"]
        for client, measured in clients.items():
            ratio = "" if client == "pool" else f"  pool is {pool / measured['msg_per_s']:.1f}x"
            check = "count ok" if measured["count_ok"] else "COUNT WRONG"
            lines.append(f"  {path:10} {client:22} {measured['msg_per_s']:8,.0f} msg/s "
                         f"({measured['seconds']:.2f} s, {check}){ratio}")
        if path != "loopback":
            ratio = pool / clients["client-per-message"]["msg_per_s"]
            met = "met" if ratio >= TARGET_AT_20MS else "NOT MET"
            lines.append(f"  target: pool >= {TARGET_AT_20MS:g}x a new connection per message "
                         f"at 20 ms RTT: {ratio:.1f}x, {met}")
    if "skipped" in rows:
        lines.append(f"  {rows['skipped']}")
    return "\n".join(lines)


def _in_process(client: str, host: str, port: int, ca_file: str, messages: int,
                threads: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.pool_web", "--client", client, "--host", host,
               "--port", str(port), "--ca-file", ca_file, "--messages", str(messages),
               "--threads", str(threads)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              check=True)
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def _sender(client: str, host: str, port: int, ca_file: str,
            threads: int) -> tuple[Callable[[], None], Callable[[], None]]:
    """(send one message, clean up) for ``client``."""
    if client == "pool":
        pool = SmtpPool(host, port, USER, PASSWORD, "ssl_explicit", max_connections=threads,
                        ca_file=ca_file)
        return (lambda: pool.send(MESSAGE) and None), pool.close

    if client == "client-per-message":
        def fresh() -> None:
            with SmtpClient(host, port, USER, PASSWORD, "ssl_explicit",
                            ca_file=ca_file) as one:
                one.send(MESSAGE)

        return fresh, lambda: None

    context = ssl.create_default_context(cafile=ca_file)

    def stdlib() -> None:
        with smtplib.SMTP(host, port, timeout=30) as one:
            one.starttls(context=context)
            one.login(USER, PASSWORD)
            one.sendmail("app@example.com", ["user@example.org"], MESSAGE)

    return stdlib, lambda: None


def _work(send: Callable[[], None], messages: int, threads: int) -> tuple[float, int]:
    remaining = iter(range(messages))
    lock = threading.Lock()
    sent = [0]

    def loop() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            send()
            with lock:
                sent[0] += 1

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started, sent[0]


def _client_main(arguments: argparse.Namespace) -> None:
    send, clean_up = _sender(arguments.client, arguments.host, arguments.port,
                             arguments.ca_file, arguments.threads)
    seconds, sent = _work(send, arguments.messages, arguments.threads)
    clean_up()
    print(json.dumps({"seconds": round(seconds, 3), "sent": sent,
                      "msg_per_s": round(sent / seconds, 1)}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pool_web")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--client", choices=CLIENTS)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--ca-file")
    arguments = parser.parse_args(argv)
    if arguments.client:
        _client_main(arguments)
        return 0
    rows = run(arguments.messages, arguments.threads)
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
