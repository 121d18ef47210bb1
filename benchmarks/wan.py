"""The WAN part: the clients 20 ms away from the server, through ``DelayProxy`` (10 ms each
way), against a real Postfix ``smtpd`` (PIPELINING and CHUNKING) and ``smtp-sink`` (PIPELINING,
no CHUNKING), on one connection unless the row says otherwise. The loops send 100 messages
each on one connection (as the issue that set the targets measured them), bulk rows 600; the
timed part includes connecting, EHLO and QUIT (four round trips), as in every other row.

Each row runs in its own worker process (``benchmarks.worker``), once, after a warm-up; the
server's own count is checked after every row (Postfix: the messages delivered to its maildir;
smtp-sink: its counter). ``send_many`` against Postfix is also run without the delay, to see how
much of its own rate it keeps when the server is far away.

``python -m benchmarks.wan [--quick]`` runs it alone; ``python -m benchmarks.run`` runs it with
everything else.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import corpus
from benchmarks.delay_proxy import DelayProxy
from benchmarks.measure import SmallWorker
from benchmarks.sinks import SmtpSink

RTT_MS = 20.0
WAN_CLIENTS = {
    "smtplib": ("smtplib", 1, "smtplib sendmail() loop"),
    "aiosmtplib": ("aiosmtplib", 1, "aiosmtplib sendmail() loop"),
    "mailwire-send": ("mailwire-send", 1, "mailwire send() loop"),
    "mailwire-async-send": ("mailwire-async-send", 1, "mailwire async send() loop"),
    "mailwire-send-many": ("mailwire-send-many", 1, "mailwire send_many()"),
    "mailwire-send-many/4": ("mailwire-send-many", 4, "mailwire send_many(), 4 connections"),
}
LOOPS = ("smtplib", "aiosmtplib", "mailwire-send", "mailwire-async-send")


@contextmanager
def _servers(directory: Path) -> Iterator[dict[str, tuple[int, Callable[[], int]]]]:
    """Postfix and smtp-sink, each with a way to read how many messages it has."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.postfix import start_postfix

    postfix = start_postfix(main_cf={"smtpd_junk_command_limit": "100"})
    try:
        with SmtpSink(directory) as sink:
            yield {"postfix": (postfix.port, lambda: len(postfix.delivered())),
                   "smtp-sink": (sink.port, sink.received)}
    finally:
        postfix.stop()


def _count_ok(count: Callable[[], int], before: int, sent: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while count() - before < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    return count() - before == sent


def _row(client: str, connections: int, port: int, files: dict[str, Path], count: int,
         warmup: int) -> dict[str, Any]:
    spec = {"client": client, "port": port, "message_file": str(files["message"]),
            "smtp_source_file": str(files["smtp_source"]), "connections": connections}
    worker = SmallWorker(client, spec)
    try:
        worker.ready()
        worker.run(warmup)
        return worker.run(count)
    finally:
        worker.close()


def run(quick: bool, directory: Path) -> dict[str, Any]:
    message = corpus.small_message()
    (directory / "message.eml").write_bytes(message)
    files = {"message": directory / "message.eml",
             "smtp_source": corpus.smtp_source_file(message, directory)}
    loop_count, bulk_count = (12, 200) if quick else (100, 600)
    results: dict[str, Any] = {"rtt_ms": RTT_MS, "rows": {}}
    with _servers(directory) as servers:
        for server, (port, count) in servers.items():
            with DelayProxy(("127.0.0.1", port), one_way=RTT_MS / 2000) as proxy:
                for key, (client, connections, _label) in WAN_CLIENTS.items():
                    total = loop_count if key in LOOPS else bulk_count
                    before = count()
                    measured = _row(client, connections, proxy.port, files, total,
                                    warmup=2 if key in LOOPS else 20)
                    warm = 2 if key in LOOPS else 20
                    measured["count_ok"] = _count_ok(count, before, measured["sent"] + warm)
                    measured["msg_per_s"] = measured["sent"] / measured["seconds"]
                    results["rows"][f"{server}/{key}/{RTT_MS:g} ms"] = measured
            before = count()
            measured = _row("mailwire-send-many", 1, port, files, bulk_count, warmup=20)
            measured["count_ok"] = _count_ok(count, before, measured["sent"] + 20)
            measured["msg_per_s"] = measured["sent"] / measured["seconds"]
            results["rows"][f"{server}/mailwire-send-many/loopback"] = measured
    rows = results["rows"]
    results["ratios"] = {
        "send() vs smtplib, Postfix, 20 ms": _ratio(rows, "postfix/mailwire-send/20 ms",
                                                    "postfix/smtplib/20 ms"),
        "send_many 20 ms vs loopback, Postfix": _ratio(rows, "postfix/mailwire-send-many/20 ms",
                                                      "postfix/mailwire-send-many/loopback"),
    }
    return results


def _ratio(rows: dict[str, Any], top: str, bottom: str) -> float | None:
    if top not in rows or bottom not in rows or not rows[bottom]["msg_per_s"]:
        return None
    return float(rows[top]["msg_per_s"] / rows[bottom]["msg_per_s"])


TARGETS = (("send() vs smtplib, Postfix, 20 ms", 3.5), ("send_many 20 ms vs loopback, Postfix",
                                                         0.80))


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for name, bound in TARGETS:
        value = results["ratios"].get(name)
        found.append({"target": f"WAN: {name}", "wanted": f">= {bound:g}x", "value": value,
                      "met": None if value is None else value >= bound,
                      "shown": "not measured" if value is None else f"{value:.2f}x"})
    return found


def render(results: dict[str, Any]) -> str:
    lines = [f"Over a real network: {results['rtt_ms']:g} ms round trip (delay proxy), "
             "1.2 kB messages, msg/s",
             "",
             "| client | Postfix (CHUNKING) | smtp-sink (no CHUNKING) |",
             "| --- | --- | --- |"]
    rows = results["rows"]
    for key, (_client, _connections, label) in WAN_CLIENTS.items():
        cells = []
        for server in ("postfix", "smtp-sink"):
            row = rows.get(f"{server}/{key}/{results['rtt_ms']:g} ms")
            cells.append("-" if row is None else
                         f"{row['msg_per_s']:,.1f}{'' if row['count_ok'] else ' (count!)'}")
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    cells = []
    for server in ("postfix", "smtp-sink"):
        row = rows.get(f"{server}/mailwire-send-many/loopback")
        cells.append("-" if row is None else f"{row['msg_per_s']:,.1f}")
    lines.append(f"| mailwire send_many(), no delay | {cells[0]} | {cells[1]} |")
    lines.append("")
    for name, value in results["ratios"].items():
        lines.append(f"{name}: {'-' if value is None else f'{value:.2f}x'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wan")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailwire-wan-") as temporary:
        results = run(arguments.quick, Path(temporary))
    print(render(results))
    for target in targets(results):
        print(f"{target['target']}: {target['shown']} (wanted {target['wanted']})")
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
