"""The benchmark command: ``python -m benchmarks.run [--quick] [--json FILE] [--png FILE]``.

Starts Postfix's ``smtp-sink``, a Postfix ``smtpd`` and ``DevServer``s, runs every row (see
README.md; the WAN rows through a 20 ms delay proxy), stops the servers, prints the tables and
the targets, and writes the JSON and the chart if asked.
``--profile ROW`` runs one row under cProfile instead and prints the functions with the most
own time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import chart, corpus, measure, pool_web, report, wan
from benchmarks.measure import LARGE_CLIENTS, MIB, SMALL_CLIENTS
from benchmarks.profiling import top_functions
from benchmarks.sinks import SmtpSink, TlsServers

CONNECTIONS = (1, 4, 16)
GREETING_TIMEOUT = 0.2
ALL_LARGE = tuple(LARGE_CLIENTS)
STREAMING_ONLY = ("mailwire-send", "mailwire-async-send", "sendall")

LargeRows = tuple[tuple[str, int, tuple[str, ...], int], ...]


@dataclass(frozen=True)
class Plan:
    repetitions: int
    seconds_per_repetition: float
    warmup_messages: int
    minimum_messages: int  # per repetition
    large: LargeRows  # label, bytes, clients, repetitions
    setup_iterations: int
    auto_iterations: int


FULL = Plan(repetitions=7, seconds_per_repetition=1.0, warmup_messages=1000,
            minimum_messages=3000,
            large=(("50 MiB", 50 * MIB, ALL_LARGE, 3), ("1 GiB", 1024 * MIB, STREAMING_ONLY, 2)),
            setup_iterations=40, auto_iterations=12)
QUICK = Plan(repetitions=3, seconds_per_repetition=0.5, warmup_messages=500,
             minimum_messages=1000,
             large=(("50 MiB", 50 * MIB, ALL_LARGE, 2),),
             setup_iterations=12, auto_iterations=5)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    rows = [f"{client}/{n}" for n in CONNECTIONS for client in SMALL_CLIENTS]
    rows += [f"{client}/{size[0]}" for size in FULL.large for client in size[2]]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="fewer and shorter repetitions, no 1 GiB message (about a minute)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--png", type=Path, metavar="FILE", help="draw the chart (matplotlib)")
    parser.add_argument("--profile", metavar="ROW", choices=rows,
                        help="run only ROW under cProfile and print its top functions; "
                             f"ROW is one of: {', '.join(rows)}")
    parser.add_argument("--profile-top", type=int, default=15, metavar="N",
                        help="how many functions --profile prints (default 15)")
    parser.add_argument("--workdir", type=Path, metavar="DIR",
                        help="where the message files go (default: a temporary directory)")
    return parser.parse_args(argv)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _postfix_version() -> str:
    try:
        found = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                               text=True, timeout=10, check=False)
        return found.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _meta(plan: Plan, quick: bool) -> dict[str, Any]:
    return {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": quick,
        "cpus": os.cpu_count(),
        "loadavg_before": _loadavg(),
        "python": platform.python_version(),
        "mailwire": version("mailwire"),
        "aiosmtplib": version("aiosmtplib"),
        "postfix": _postfix_version(),
        "repetitions": plan.repetitions,
        "seconds_per_repetition": plan.seconds_per_repetition,
        "small_message_bytes": corpus.SMALL_SIZE,
        "greeting_timeout": GREETING_TIMEOUT,
    }


def _message_files(directory: Path) -> dict[str, Path]:
    message = corpus.small_message()
    path = directory / "message.eml"
    path.write_bytes(message)
    return {"message": path, "smtp_source": corpus.smtp_source_file(message, directory)}


def _large_sizes(large: LargeRows, directory: Path) -> list[dict[str, Any]]:
    sizes = []
    for label, size, clients, repetitions in large:
        path = corpus.write_large_message(directory / f"large-{size}.eml", size)
        sizes.append({"label": label, "bytes": size, "clients": clients,
                      "repetitions": repetitions, "path": path})
    return sizes


def run(plan: Plan, quick: bool, directory: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"meta": _meta(plan, quick)}
    started = time.monotonic()
    files = _message_files(directory)
    sizes = _large_sizes(plan.large, directory)
    print("smtp-sink: small messages ...", file=sys.stderr, flush=True)
    with SmtpSink(directory) as sink:
        results["small"] = measure.run_small(sink, files, CONNECTIONS, plan.repetitions,
                                             plan.seconds_per_repetition, plan.warmup_messages,
                                             plan.minimum_messages)
        print("smtp-sink: large messages ...", file=sys.stderr, flush=True)
        results["large"] = measure.run_large(sink, sizes)
    print("DevServer: connection set-up ...", file=sys.stderr, flush=True)
    with TlsServers(directory) as servers:
        results["setup"] = measure.run_setup(servers, plan.setup_iterations,
                                             plan.auto_iterations, GREETING_TIMEOUT)
    print("DevServer: web-like sending through a pool ...", file=sys.stderr, flush=True)
    results["pool_web"] = pool_web.run(500 if quick else 2000, 8, directory)
    print("Postfix and smtp-sink, 20 ms away ...", file=sys.stderr, flush=True)
    results["wan"] = wan.run(quick, directory)
    results["meta"]["loadavg_after"] = _loadavg()
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    report.add_ratios(results)
    results["targets"] = report.targets(results) + wan.targets(results["wan"])
    return results


def profile(row: str, plan: Plan, directory: Path, top: int) -> str:
    """Run ``row`` alone under cProfile (its timed repetitions only) and list its top functions."""
    stats = directory / "profile.pstats"
    files = _message_files(directory)
    with SmtpSink(directory) as sink:
        if row.rsplit("/", 1)[1].isdigit():
            rows = measure.run_small(sink, files, CONNECTIONS, plan.repetitions,
                                     plan.seconds_per_repetition, plan.warmup_messages,
                                     plan.minimum_messages, only=row, profile=stats)
            spread = rows[0]["msg_per_s"] or {}
            speed = f"{spread.get('median', 0):,.0f} msg/s under the profiler"
        else:
            label = row.rsplit("/", 1)[1]
            once = tuple((name, size, clients, 1) for name, size, clients, _ in FULL.large
                         if name == label)
            sizes = _large_sizes(once, directory)
            rows = measure.run_large(sink, sizes, only=row, profile=stats)
            spread = rows[0]["mib_per_s"] or {}
            speed = f"{spread.get('median', 0):.1f} MiB/s under the profiler"
    return f"{row}: {speed}\n" + top_functions(stats, top)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    plan = QUICK if arguments.quick else FULL
    with tempfile.TemporaryDirectory(prefix="mailwire-bench-") as temporary:
        directory = arguments.workdir or Path(temporary)
        directory.mkdir(parents=True, exist_ok=True)
        if arguments.profile:
            print(profile(arguments.profile, plan, directory, arguments.profile_top))
            return 0
        results = run(plan, arguments.quick, directory)
    print(report.render(results))
    print("\n" + pool_web.render(results["pool_web"]))
    print("\n" + wan.render(results["wan"]))
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"\nJSON written to {arguments.json}")
    if arguments.png:
        print(("\n" if not arguments.json else "") + chart.write_png(results, arguments.png))
    print(f"\n{results['meta']['seconds']} s; load average after: "
          f"{results['meta']['loadavg_after']}")
    return 0 if all(target["met"] is not False for target in results["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())
