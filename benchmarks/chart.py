"""The PNG chart: small-message throughput by connection count, large-message throughput and
memory, and connection set-up times. Needs matplotlib (the ``bench`` extra); without it the
chart is skipped with a message, and everything else still runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.measure import MIB, SETUP_MODES, SMALL_CLIENTS

SETUP_CLIENTS = ("mailwire", "mailwire-async", "smtplib", "aiosmtplib")


def write_png(results: dict[str, Any], path: Path) -> str:
    """Draw the chart at ``path``; returns what happened, for the console."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"matplotlib is not installed: no chart written to {path} " \
               "(pip install -e '.[bench]')"
    figure, (small_axes, large_axes, setup_axes) = plt.subplots(
        1, 3, figsize=(18, 6), gridspec_kw={"width_ratios": [3, 2, 3]})
    _small(small_axes, results["small"])
    _large(large_axes, results["large"])
    _setup(setup_axes, results["setup"])
    meta = results["meta"]
    figure.suptitle(f"mailwire benchmark, {meta['started']} ({'quick' if meta['quick'] else 'full'}"
                    f" run, load {meta['loadavg_before']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"chart written to {path}"


def _bars(axes: Any, groups: list[str], series: dict[str, list[float]],
          notes: dict[str, list[str]] | None = None) -> None:
    """Grouped bars, one group per entry of ``groups``; ``notes`` are written above bars."""
    width = 0.8 / max(1, len(series))
    for number, (name, values) in enumerate(series.items()):
        positions = [group + number * width for group in range(len(groups))]
        bars = axes.bar(positions, values, width, label=name)
        if notes and name in notes:
            axes.bar_label(bars, notes[name], fontsize=7)
    axes.set_xticks([group + 0.4 - width / 2 for group in range(len(groups))], groups)
    highest = max((value for values in series.values() for value in values), default=0)
    axes.set_ylim(0, highest * 1.35 or 1)  # room for the legend above the bars
    axes.legend(fontsize="small", ncol=2, loc="upper left")


def _small(axes: Any, rows: list[dict[str, Any]]) -> None:
    connections = sorted({row["connections"] for row in rows})
    series = {}
    for client, label in SMALL_CLIENTS.items():
        by_connections = {row["connections"]: row for row in rows if row["client"] == client}
        if by_connections:
            series[label] = [(by_connections.get(n, {}).get("msg_per_s") or {}).get("median", 0)
                             for n in connections]
    _bars(axes, [f"{n} connection{'s' if n > 1 else ''}" for n in connections], series)
    axes.set_title("1,229-byte messages to smtp-sink (msg/s, median)")
    axes.set_ylabel("messages per second")


def _large(axes: Any, rows: list[dict[str, Any]]) -> None:
    sizes = list(dict.fromkeys(row["size_label"] for row in rows))
    series: dict[str, list[float]] = {}
    notes: dict[str, list[str]] = {}
    for label in dict.fromkeys(row["label"] for row in rows):
        cells = [next((row for row in rows if row["label"] == label and row["size_label"] == size),
                      None) for size in sizes]
        series[label] = [((cell or {}).get("mib_per_s") or {}).get("median", 0) for cell in cells]
        notes[label] = [f"+{cell['peak_rss_above_baseline'] / MIB:.0f} MiB"
                        if cell and cell.get("peak_rss_above_baseline") is not None else ""
                        for cell in cells]
    _bars(axes, sizes, series, notes)
    axes.set_title("Large streamed message (MiB/s, median; above: peak RSS)")
    axes.set_ylabel("MiB per second")


def _setup(axes: Any, rows: list[dict[str, Any]]) -> None:
    modes = [mode for mode in SETUP_MODES if not mode.auto_detection]
    series = {}
    for client in SETUP_CLIENTS:
        values = []
        for mode in modes:
            row = next((row for row in rows
                        if row["client"] == client and row["mode"] == mode.key), None)
            values.append((row or {}).get("ms", {}).get("median", 0) if row and row["ms"] else 0)
        series[client] = values
    _bars(axes, [mode.label.replace(", ", ",\n").replace(" (", "\n(") for mode in modes], series)
    axes.set_title("Connection set-up (ms, median; lower is better; auto detection: see table)",
                   fontsize="medium")
    axes.set_ylabel("milliseconds")
    axes.tick_params(axis="x", labelsize=7)
