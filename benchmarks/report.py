"""The table, mailwire's ratios to its peers, the issue's targets, and the JSON document.

Every ratio says how many times faster mailwire is than the peer in the same run (above 1:
mailwire is ahead): messages per second or MiB/s divided by the peer's, or the peer's set-up
time divided by mailwire's. Medians are compared.
"""

from __future__ import annotations

from typing import Any

from benchmarks.measure import MIB, SETUP_MODES

PEERS_SMALL = ("smtplib", "aiosmtplib", "smtp-source", "pipelined-socket")
PEERS_LARGE = ("smtplib", "aiosmtplib")
MAILWIRE_BULK = ("mailwire-send-many", "mailwire-send-many-processes", "mailwire-async-send-many")
AUTO_MARGIN_MS = 50.0


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


def _median(row: dict[str, Any] | None, key: str) -> float | None:
    if row is None or not row.get(key):
        return None
    value: float = row[key]["median"]
    return value


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def add_ratios(results: dict[str, Any]) -> None:
    """Put each mailwire row's ratios to its peers into the row (``ratios``)."""
    small = _by_id(results["small"])
    for row in results["small"]:
        if row["client"].startswith("mailwire"):
            row["ratios"] = {peer: _ratio(_median(row, "msg_per_s"),
                                          _median(small.get(f"{peer}/{row['connections']}"),
                                                  "msg_per_s"))
                             for peer in PEERS_SMALL}
    large = _by_id(results["large"])
    for row in results["large"]:
        ceiling = _median(large.get(f"sendall/{row['size_label']}"), "mib_per_s")
        row["share_of_sendall"] = _ratio(_median(row, "mib_per_s"), ceiling)
        if row["client"].startswith("mailwire"):
            row["ratios"] = {peer: _ratio(_median(row, "mib_per_s"),
                                          _median(large.get(f"{peer}/{row['size_label']}"),
                                                  "mib_per_s"))
                             for peer in PEERS_LARGE}
    setup = _by_id(results["setup"])
    peers_mode = {"none": "none", "ssl_explicit": "ssl_explicit", "ssl_implicit": "ssl_implicit",
                  "auto_plain": "none", "auto_starttls": "ssl_explicit"}
    for row in results["setup"]:
        if row["client"].startswith("mailwire") and row["mode"] in peers_mode:
            reference = peers_mode[row["mode"]]
            row["ratios"] = {peer: _ratio(_median(setup.get(f"{peer}/{reference}"), "ms"),
                                          _median(row, "ms"))
                             for peer in ("smtplib", "aiosmtplib")}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the value measured and whether it is met."""
    small, large, setup = (_by_id(results[part]) for part in ("small", "large", "setup"))
    found: list[dict[str, Any]] = []

    def add(name: str, value: float | None, wanted: str, met: bool | None, shown: str) -> None:
        found.append({"target": name, "wanted": wanted, "value": value,
                      "met": met if value is not None else None,
                      "shown": shown if value is not None else "not measured"})

    def small_ratio(ours: str, peer: str) -> float | None:
        return _ratio(_median(small.get(ours), "msg_per_s"), _median(small.get(peer), "msg_per_s"))

    for ours, peer, factor, name in (
        ("mailwire-send-many/1", "smtplib/1", 3.0, "1 connection: send_many vs smtplib"),
        ("mailwire-send-many/1", "aiosmtplib/1", 5.0, "1 connection: send_many vs aiosmtplib"),
        ("mailwire-async-send-many/1", "smtplib/1", 2.0, "asyncio send_many vs smtplib"),
    ):
        value = small_ratio(ours, peer)
        add(name, value, f">= {factor:g}x", value is not None and value >= factor,
            f"{value:.2f}x" if value is not None else "")

    value = small_ratio("mailwire-send-many/1", "pipelined-socket/1")
    add("1 connection: send_many vs the bare-socket ceiling", value, ">= 0.95x",
        value is not None and value >= 0.95, f"{value:.2f}x" if value is not None else "")

    bulk = [(small_ratio(f"{client}/4", "smtp-source/4"), client) for client in MAILWIRE_BULK]
    measured = [(value, client) for value, client in bulk if value is not None]
    if measured:
        value, client = max(measured)
        add("4 connections: best mailwire bulk vs smtp-source -s 4", value, ">= 1x",
            value >= 1.0, f"{value:.2f}x ({client})")
    else:
        add("4 connections: best mailwire bulk vs smtp-source -s 4", None, ">= 1x", None, "")

    for client in ("mailwire-send", "mailwire-async-send"):
        row = large.get(f"{client}/50 MiB")
        share = row.get("share_of_sendall") if row else None
        add(f"50 MiB, {client}: throughput vs sendall", share, ">= 85%",
            share is not None and share >= 0.85, f"{share:.0%}" if share is not None else "")
        peak = row.get("peak_rss_above_baseline") if row else None
        peak_mib = peak / MIB if peak is not None else None
        add(f"50 MiB, {client}: peak RSS above baseline", peak_mib, "< 64 MiB",
            peak_mib is not None and peak_mib < 64, f"{peak_mib:.1f} MiB"
            if peak_mib is not None else "")

    for client in ("mailwire", "mailwire-async"):
        row = setup.get(f"{client}/auto_implicit")
        median = _median(row, "ms")
        margin = median - 1000 * row["greeting_timeout"] if median is not None and row else None
        add(f"auto detection, {client}: time over greeting_timeout", margin,
            f"<= {AUTO_MARGIN_MS:g} ms", margin is not None and margin <= AUTO_MARGIN_MS,
            f"+{margin:.1f} ms" if margin is not None else "")
    return found


# -- the table -------------------------------------------------------------------------------

def _number(value: float | None, spec: str, width: int) -> str:
    return format(value, spec).rjust(width) if value is not None else "-".rjust(width)


def _ratios(row: dict[str, Any], peers: tuple[str, ...], width: int = 9) -> str:
    ratios = row.get("ratios") or {}
    return "".join(_number(ratios.get(peer), ".2f", width - 1) + ("x" if ratios.get(peer)
                   is not None else " ") for peer in peers)


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"mailwire benchmark ({'quick' if meta['quick'] else 'full'} run, {meta['started']})",
        f"machine: {meta['cpus']} CPUs; load average before {meta['loadavg_before']}, "
        f"after {meta['loadavg_after']}; Python {meta['python']}; mailwire {meta['mailwire']}; "
        f"aiosmtplib {meta['aiosmtplib']}; Postfix {meta['postfix']}",
        "ratios: how many times faster mailwire is than the peer in this run (>1: mailwire "
        "ahead)",
    ]
    if results["small"]:
        lines += ["", *_render_small(results["small"], meta)]
    if results["large"]:
        lines += ["", *_render_large(results["large"])]
    if results["setup"]:
        lines += ["", *_render_setup(results["setup"])]
    if results["targets"]:
        lines += ["", "Targets (issue 5)"]
        for target in results["targets"]:
            mark = {True: "met    ", False: "NOT MET", None: "-      "}[target["met"]]
            lines.append(f"  [{mark}] {target['target']:<52} {target['wanted']:<10} "
                         f"{target['shown']}")
    return "\n".join(lines)


def _render_small(rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    lines = [
        f"Small messages: {meta['small_message_bytes']:,} bytes, 1 recipient, to smtp-sink; "
        f"msg/s = median of {meta['repetitions']} repetitions (min-max); CPU = client process "
        "per message and share of one core; sink = smtp-sink CPU per message; count = the "
        "sink's own count matches the client's; others = CPU the rest of the machine used "
        "meanwhile, in cores (noise); vs socket = share of what a bare pipelined socket loop "
        "with no SMTP logic reaches (one round trip per message: the protocol's ceiling)",
        f"{'conns':>5}  {'client':<28}{'msg/s':>9} {'min-max':>17} {'us/msg':>7} {'core':>5} "
        f"{'sink us':>8} {'count':>6} {'others':>6}{'vs smtplib':>11}{'vs aiosmtp':>11}"
        f"{'vs source':>10}{'vs socket':>10}",
    ]
    previous = None
    for row in rows:
        if previous is not None and row["connections"] != previous:
            lines.append("")
        previous = row["connections"]
        spread = row["msg_per_s"] or {}
        span = (f"{spread['min']:,.0f}-{spread['max']:,.0f}" if spread else "-")
        lines.append(
            f"{row['connections']:>5}  {row['label']:<28}"
            f"{_number(spread.get('median'), ',.0f', 9)} {span:>17} "
            f"{_number(row['client_cpu_us_per_msg'], '.0f', 7)} "
            f"{_number(row['client_cpu_share'], '.0%', 5)} "
            f"{_number(row['sink_cpu_us_per_msg'], '.1f', 8)} "
            f"{'ok' if row['sink_verified'] else 'DIFF':>6} "
            f"{_number(row['others_cpu_cores'], '.2f', 6)}"
            f"{_ratios(row, ('smtplib', 'aiosmtplib'), 11)}"
            f"{_ratios(row, ('smtp-source', 'pipelined-socket'), 10)}"
        )
        for mismatch in row["sink_mismatches"][:2]:
            lines.append(f"{'':>7}sink/client mismatch: {mismatch}")
    return lines


def _render_large(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Large streamed messages (generated on disk; mailwire sends the path, smtplib and "
        "aiosmtplib need the bytes so they read the file in the timed part); MiB/s median "
        "(min-max); RSS = client's peak resident memory above its size right before the send "
        "(worst repetition)",
        f"{'size':>7}  {'client':<28}{'MiB/s':>8} {'min-max':>13} {'of sendall':>10} "
        f"{'RSS MiB':>8} {'base MiB':>8} {'count':>6}{'vs smtplib':>11}{'vs aiosmtp':>11}",
    ]
    previous = None
    for row in rows:
        if previous is not None and row["size_label"] != previous:
            lines.append("")
        previous = row["size_label"]
        spread = row["mib_per_s"] or {}
        span = f"{spread['min']:.1f}-{spread['max']:.1f}" if spread else "-"
        peak = row["peak_rss_above_baseline"]
        base = row["baseline_rss"]
        lines.append(
            f"{row['size_label']:>7}  {row['label']:<28}{_number(spread.get('median'), '.1f', 8)}"
            f" {span:>13} {_number(row.get('share_of_sendall'), '.0%', 10)} "
            f"{_number(peak / MIB if peak is not None else None, '.1f', 8)} "
            f"{_number(base / MIB if base is not None else None, '.1f', 8)} "
            f"{'ok' if row['sink_verified'] else 'DIFF':>6}"
            f"{_ratios(row, PEERS_LARGE, 11)}"
        )
        for error in row["errors"][:2]:
            lines.append(f"{'':>9}error: {error}")
    return lines


def _render_setup(rows: list[dict[str, Any]]) -> list[str]:
    by_id = _by_id(rows)
    some = next(iter(rows))
    lines = [
        "Connection set-up (TCP connect, greeting, EHLO; STARTTLS and EHLO again; TLS first for "
        "implicit) against DevServer (aiosmtpd), verifying TLS; median ms (the AUTO rows' ratios "
        "compare with the peers in the mode the server speaks)",
        f"{'mode':<34}{'mailwire':>9}{'async':>8}{'smtplib':>9}{'aiosmtp':>9}"
        f"{'mw/smtplib':>11}{'async/aio':>10}  detected",
    ]
    for mode in SETUP_MODES:
        cells = {client: by_id.get(f"{client}/{mode.key}") for client in
                 ("mailwire", "mailwire-async", "smtplib", "aiosmtplib")}
        if not any(cells.values()):
            continue
        mailwire_row = cells["mailwire"] or {}
        async_row = cells["mailwire-async"] or {}
        sync_ratio = (mailwire_row.get("ratios") or {}).get("smtplib")
        async_ratio = (async_row.get("ratios") or {}).get("aiosmtplib")
        detected = "/".join(sorted({row["detected"] for row in (mailwire_row, async_row)
                                    if row.get("detected")}))
        lines.append(
            f"{mode.label:<34}{_number(_median(cells['mailwire'], 'ms'), '.1f', 9)}"
            f"{_number(_median(cells['mailwire-async'], 'ms'), '.1f', 8)}"
            f"{_number(_median(cells['smtplib'], 'ms'), '.1f', 9)}"
            f"{_number(_median(cells['aiosmtplib'], 'ms'), '.1f', 9)}"
            f"{_number(sync_ratio, '.2f', 10)}{'x' if sync_ratio else ' '}"
            f"{_number(async_ratio, '.2f', 9)}{'x' if async_ratio else ' '}  {detected}"
        )
        for row in cells.values():
            if row and row.get("error"):
                lines.append(f"{'':>4}{row['client']}: {row['error']}")
    timeout_ms = 1000 * some["greeting_timeout"]
    for client in ("mailwire", "mailwire-async"):
        row = by_id.get(f"{client}/auto_implicit")
        if row and row.get("ms"):
            spread = row["ms"]
            lines.append(
                f"auto detection, {client}: {spread['median']:.1f} ms median "
                f"({spread['min']:.1f}-{spread['max']:.1f}, {len(row['times_ms'])} connections) "
                f"with greeting_timeout {timeout_ms:.0f} ms: "
                f"+{spread['median'] - timeout_ms:.1f} ms over it (target <= +{AUTO_MARGIN_MS:g})")
    return lines
