"""The client side of every row, in a process of its own so that clients never share an
interpreter (or the GIL) with each other, the sinks, or the benchmark's bookkeeping.

``python -m benchmarks.worker small SPEC``  stays up and answers commands, one JSON line in
    and one out: ``{"op": "run", "count": N}`` sends N messages with the row's client and says
    how long it took, how many it sent and how much CPU the process used; ``{"op": "exit"}``
    ends it (after writing the profile, when SPEC asks for one). The runner interleaves the
    repetitions of all rows, so load that comes and goes hits every row alike.
``python -m benchmarks.worker large SPEC``  sends one large message and prints one JSON line.
``python -m benchmarks.worker setup SPEC``  times connection set-ups and prints one JSON line.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import clients, handshake, large
from benchmarks.profiling import ThreadProfiler


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def serve_small(spec: dict[str, Any], commands: Any, replies: Any) -> None:
    send = clients.SENDERS[spec["client"]]
    target = clients.Target(spec["port"], Path(spec["message_file"]).read_bytes(),
                            Path(spec["smtp_source_file"]))
    connections = int(spec["connections"])
    profiler = ThreadProfiler() if spec.get("profile") else None
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in commands:
        command = json.loads(line)
        if command["op"] == "exit":
            break
        count = int(command["count"])
        cpu = _cpu_seconds()
        started = time.perf_counter()
        if profiler is not None and command.get("profile", True):
            with profiler:
                outcome = send(target, count, connections)
        else:
            outcome = send(target, count, connections)
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu + outcome.child_cpu
        replies.write(json.dumps({"seconds": seconds, "sent": outcome.sent,
                                  "failed": outcome.failed, "errors": outcome.errors,
                                  "cpu": cpu}) + "\n")
        replies.flush()
    if profiler is not None:
        profiler.dump(Path(spec["profile"]))


def run_large(spec: dict[str, Any]) -> dict[str, Any]:
    send = large.SENDS[spec["client"]]
    if spec.get("profile"):
        with ThreadProfiler() as profiler:
            outcome = large.measure(send, spec["port"], Path(spec["path"]))
        profiler.dump(Path(spec["profile"]))
    else:
        outcome = large.measure(send, spec["port"], Path(spec["path"]))
    return asdict(outcome)


def run_setup(spec: dict[str, Any]) -> dict[str, Any]:
    connect = handshake.CONNECTS[spec["client"]]
    context = ssl.create_default_context(cafile=spec["ca_file"])
    args = (spec["port"], spec["mode"], context, spec["greeting_timeout"])
    try:
        connect(*args, spec["warmup"])
        times, detected = connect(*args, spec["iterations"])
    except Exception as failure:
        return {"times": [], "detected": None, "error": f"{type(failure).__name__}: {failure}"}
    return {"times": times, "detected": detected, "error": None}


def main() -> None:
    kind, spec = sys.argv[1], json.loads(sys.argv[2])
    if kind == "small":
        serve_small(spec, sys.stdin, sys.stdout)
        return
    result = run_large(spec) if kind == "large" else run_setup(spec)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
