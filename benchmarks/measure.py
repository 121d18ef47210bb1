"""Running the rows: starting workers, interleaving repetitions, and checking every count
against the sink's.

Results are plain dicts (they go to JSON as they are); ``report`` turns them into the table.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.sinks import SmtpSink, TlsServers
from mailwire.devserver import TlsMode

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024

SMALL_CLIENTS = {
    "mailwire-send": "mailwire send() loop",
    "mailwire-send-many": "mailwire send_many()",
    "mailwire-send-many-processes": "mailwire send_many(processes)",
    "mailwire-async-send-many": "mailwire async send_many()",
    "smtplib": "smtplib sendmail() loop",
    "aiosmtplib": "aiosmtplib sendmail() loop",
    "smtp-source": "smtp-source -d",
    "pipelined-socket": "bare socket loop (ceiling)",
}
LARGE_CLIENTS = {
    "mailwire-send": "mailwire send(path)",
    "mailwire-async-send": "mailwire async send(path)",
    "smtplib": "smtplib sendmail(bytes)",
    "aiosmtplib": "aiosmtplib sendmail(bytes)",
    "sendall": "socket.sendall (ceiling)",
}
SETUP_CLIENTS = ("mailwire", "mailwire-async", "smtplib", "aiosmtplib")


@dataclass(frozen=True)
class SetupMode:
    """One set-up row: mailwire's mode, the server it meets, and what the peers use there."""

    key: str
    label: str
    server: TlsMode
    mailwire: str
    peers: str | None  # the peers' mode against this server (None: no peer row)
    auto_detection: bool = False


SETUP_MODES = (
    SetupMode("none", "NONE", TlsMode.NONE, "none", "none"),
    SetupMode("ssl_explicit", "SSL_EXPLICIT (STARTTLS)", TlsMode.STARTTLS, "ssl_explicit",
              "starttls"),
    SetupMode("ssl_implicit", "SSL_IMPLICIT", TlsMode.IMPLICIT, "ssl_implicit", "implicit"),
    SetupMode("auto_plain", "AUTO, plaintext server", TlsMode.NONE, "auto", None),
    SetupMode("auto_starttls", "AUTO, STARTTLS server", TlsMode.STARTTLS, "auto", None),
    SetupMode("auto_implicit", "AUTO, implicit TLS (port != 465)", TlsMode.IMPLICIT, "auto",
              None, auto_detection=True),
)


def _worker_command(kind: str, spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "benchmarks.worker", kind, json.dumps(spec)]


def _one_shot(kind: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    finished = subprocess.run(_worker_command(kind, spec), cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, check=False)
    if finished.returncode != 0 or not finished.stdout.strip():
        return {"error": f"worker exited {finished.returncode}: {finished.stderr.strip()[-500:]}"}
    result: dict[str, Any] = json.loads(finished.stdout.splitlines()[-1])
    return result


class SmallWorker:
    """A worker process that sends small messages for one row, on command."""

    def __init__(self, row: str, spec: dict[str, Any]) -> None:
        self.row = row
        self.process = subprocess.Popen(_worker_command("small", spec), cwd=ROOT, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ready(self) -> None:
        self._reply()

    def run(self, count: int, *, profile: bool = True) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": "run", "count": count,
                                             "profile": profile}) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            try:
                self.process.stdin.write(json.dumps({"op": "exit"}) + "\n")
                self.process.stdin.close()
                self.process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker for {self.row} died (status {self.process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_small(sink: SmtpSink, files: dict[str, Path], connections: tuple[int, ...],
              repetitions: int, seconds: float, warmup: int, minimum: int,
              only: str | None = None, profile: Path | None = None) -> list[dict[str, Any]]:
    """Every client on every connection count, repetitions interleaved across rows.

    A repetition sends about ``seconds`` worth of messages at the rate the warm-up showed,
    and never fewer than ``minimum``, so that connecting costs little next to sending.
    """
    rows = [(client, n) for n in connections for client in SMALL_CLIENTS
            if only is None or f"{client}/{n}" == only]
    workers = []
    try:
        for client, n in rows:
            spec = {"client": client, "connections": n, "port": sink.port,
                    "message_file": str(files["message"]),
                    "smtp_source_file": str(files["smtp_source"]),
                    "profile": str(profile) if profile else None}
            workers.append(SmallWorker(f"{client}/{n}", spec))
        for worker in workers:
            worker.ready()
        results = {worker.row: _new_small_row(worker.row) for worker in workers}
        for worker in workers:  # warm-up, and the count that makes one repetition ~seconds
            reply = _checked_run(sink, worker, warmup, results[worker.row], profile=False)
            rate = reply["sent"] / reply["seconds"] if reply["sent"] else 0.0
            results[worker.row]["messages_per_repetition"] = _round_count(rate * seconds,
                                                                          minimum)
        for repetition in range(repetitions):
            shift = repetition % len(workers)
            for worker in workers[shift:] + workers[:shift]:
                row = results[worker.row]
                row["runs"].append(_checked_run(sink, worker, row["messages_per_repetition"],
                                                row))
    finally:
        for worker in workers:
            worker.close()
    return [_summarize_small(row) for row in results.values()]


def _new_small_row(row: str) -> dict[str, Any]:
    client, connections = row.split("/")
    return {"id": row, "client": client, "label": SMALL_CLIENTS[client],
            "connections": int(connections), "runs": [],
            "sink_mismatches": [], "sink_counted": 0, "client_counted": 0}


def _checked_run(sink: SmtpSink, worker: SmallWorker, count: int, row: dict[str, Any],
                 profile: bool = True) -> dict[str, Any]:
    """One run of ``count`` messages; the sink's count, the sink's CPU time, and the CPU time
    the rest of the machine used meanwhile (``others_cpu``) go into the reply."""
    before = sink.received()
    busy, sink_cpu, own_cpu = _machine_busy(), sink.cpu_seconds(), _own_cpu()
    reply = worker.run(count, profile=profile)
    reply["sink_cpu"] = sink.cpu_seconds() - sink_cpu
    reply["others_cpu"] = (_machine_busy() - busy - reply["cpu"] - reply["sink_cpu"]
                           - (_own_cpu() - own_cpu))
    counted = sink.wait_received(before + reply["sent"]) - before
    row["sink_counted"] += counted
    row["client_counted"] += reply["sent"]
    if counted != reply["sent"] or reply["failed"]:
        row["sink_mismatches"].append({"asked": count, "client_sent": reply["sent"],
                                       "failed": reply["failed"], "sink_counted": counted,
                                       "errors": reply["errors"]})
    return reply


def _machine_busy() -> float:
    """CPU seconds all processes have used (user, nice, system: ``/proc/stat``)."""
    with open("/proc/stat") as handle:
        fields = handle.readline().split()
    return sum(int(value) for value in fields[1:4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _round_count(count: float, minimum: int) -> int:
    return max(minimum, min(1_000_000, int(round(count, -2))))


def _summarize_small(row: dict[str, Any]) -> dict[str, Any]:
    runs = row["runs"]
    rates = [run["sent"] / run["seconds"] for run in runs if run["seconds"] > 0]
    sent = sum(run["sent"] for run in runs)
    row["msg_per_s"] = _spread(rates) if rates else None
    row["client_cpu_us_per_msg"] = 1e6 * sum(run["cpu"] for run in runs) / sent if sent else None
    row["client_cpu_share"] = (sum(run["cpu"] for run in runs)
                               / sum(run["seconds"] for run in runs)) if runs else None
    row["sink_cpu_us_per_msg"] = 1e6 * sum(run["sink_cpu"] for run in runs) / sent \
        if sent else None
    row["others_cpu_cores"] = max(0.0, sum(run["others_cpu"] for run in runs)
                                  / sum(run["seconds"] for run in runs)) if runs else None
    row["sink_verified"] = not row["sink_mismatches"]
    return row


def run_large(sink: SmtpSink, sizes: list[dict[str, Any]],
              only: str | None = None, profile: Path | None = None) -> list[dict[str, Any]]:
    """Each size: its clients in turn, ``repetitions`` rounds, one fresh process per send."""
    results = []
    for size in sizes:
        clients = [client for client in size["clients"]
                   if only is None or f"{client}/{size['label']}" == only]
        rows = {client: {"id": f"{client}/{size['label']}", "client": client,
                         "label": LARGE_CLIENTS[client], "size": size["bytes"],
                         "size_label": size["label"], "runs": [], "sink_mismatches": 0}
                for client in clients}
        for _ in range(size["repetitions"]):
            for client in clients:
                before = sink.received()
                spec = {"client": client, "port": sink.port, "path": str(size["path"]),
                        "profile": str(profile) if profile else None}
                outcome = _one_shot("large", spec, timeout=600)
                sent = bool(outcome.get("sent"))
                if sink.wait_received(before + sent, timeout=5) - before != int(sent):
                    rows[client]["sink_mismatches"] += 1
                rows[client]["runs"].append(outcome)
        for row in rows.values():
            good = [run for run in row["runs"] if run.get("sent")]
            row["errors"] = [run["error"] for run in row["runs"] if run.get("error")]
            row["mib_per_s"] = _spread([row["size"] / MIB / run["seconds"] for run in good]) \
                if good else None
            row["peak_rss_above_baseline"] = max(run["peak_above_baseline"] for run in good) \
                if good else None
            row["baseline_rss"] = statistics.median(run["baseline_rss"] for run in good) \
                if good else None
            row["memory_method"] = good[0]["memory_method"] if good else None
            row["sink_verified"] = row["sink_mismatches"] == 0 and not row["errors"]
            results.append(row)
    return results


def run_setup(servers: TlsServers, iterations: int, auto_iterations: int,
              greeting_timeout: float) -> list[dict[str, Any]]:
    """Connection set-up in each mode, mailwire's clients and the peers."""
    results = []
    for mode in SETUP_MODES:
        for client in SETUP_CLIENTS:
            is_mailwire = client.startswith("mailwire")
            client_mode = mode.mailwire if is_mailwire else mode.peers
            if client_mode is None:
                continue
            count = auto_iterations if mode.auto_detection else iterations
            spec = {"client": client, "mode": client_mode, "port": servers.port(mode.server),
                    "ca_file": servers.ca_file, "greeting_timeout": greeting_timeout,
                    "warmup": 1 if mode.auto_detection else 3, "iterations": count}
            outcome = _one_shot("setup", spec, timeout=300)
            times = outcome.get("times") or []
            results.append({
                "id": f"{client}/{mode.key}", "mode": mode.key, "label": mode.label,
                "server": mode.server.value, "client": client, "client_mode": client_mode,
                "auto_detection": mode.auto_detection, "greeting_timeout": greeting_timeout,
                "detected": outcome.get("detected"), "error": outcome.get("error"),
                "times_ms": [1000 * t for t in times],
                "ms": _spread([1000 * t for t in times]) if times else None,
            })
    return results
