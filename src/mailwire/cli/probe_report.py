"""Presenting ``probe`` results: aligned text for people, one JSON document for scripts.

JSON shape::

    {"host": str, "proxy": str | null, "ok": bool,
     "recommended": {"security": "ssl_explicit", "port": 587, "note": str | null} | null,
     "before_tls": {"mode", "port", "extensions": {KEYWORD: params}, "auth_mechanisms": [...]}
                   | null,
     "after_tls": (the same) | null,
     "modes": [{"mode": "NONE" | "SSL_EXPLICIT" | "SSL_IMPLICIT", "port": int, "ok": bool,
                "error": str | null, "error_type": str | null, "hint": str | null,
                "greeting": str | null, "extensions": {...}, "auth_mechanisms": [...],
                "tls": {"version": str, "cipher": str} | null,
                "certificate": {"subject", "issuer", "not_before", "not_after", "days_left",
                                "expired", "names", "host_name_matches", "trusted",
                                "verify_error", "self_signed", "sha256"} | null,
                "timings_ms": {"connect", "tls_handshake", "greeting", "ehlo", "starttls",
                               "ehlo_after_tls": float (those that happened)}}]}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mailwire.cli.terminal import printable
from mailwire.security import SecurityOptions

if TYPE_CHECKING:
    from mailwire.cli.probe import ModeResult

_PHASE_NAMES = {"connect": "connect", "tls_handshake": "TLS", "greeting": "greeting",
                "ehlo": "EHLO", "starttls": "STARTTLS", "ehlo_after_tls": "EHLO after TLS"}


def recommended(results: list[ModeResult]) -> dict[str, Any] | None:
    working = {result.mode: result for result in results if result.ok}
    for mode in (SecurityOptions.SSL_IMPLICIT, SecurityOptions.SSL_EXPLICIT):
        result = working.get(mode)
        if result and result.certificate and result.certificate.trusted:
            return _advice(result, None)
    for mode in (SecurityOptions.SSL_IMPLICIT, SecurityOptions.SSL_EXPLICIT):
        result = working.get(mode)
        if result:
            return _advice(result, "its certificate is not trusted: add --ca-file")
    result = working.get(SecurityOptions.NONE)
    if result:
        return _advice(result, "plaintext only: passwords and mail would cross the network "
                               "unencrypted")
    return None


def _advice(result: ModeResult, note: str | None) -> dict[str, Any]:
    return {"security": result.mode.value, "port": result.port, "note": note}


def _capabilities(results: list[ModeResult], modes: tuple[SecurityOptions, ...]
                  ) -> dict[str, Any] | None:
    for mode in modes:
        for result in results:
            if result.mode is mode and result.ok:
                return {"mode": mode.name, "port": result.port,
                        "extensions": result.extensions,
                        "auth_mechanisms": list(result.auth_mechanisms)}
    return None


def before_tls(results: list[ModeResult]) -> dict[str, Any] | None:
    return _capabilities(results, (SecurityOptions.NONE,))


def after_tls(results: list[ModeResult]) -> dict[str, Any] | None:
    return _capabilities(results, (SecurityOptions.SSL_EXPLICIT, SecurityOptions.SSL_IMPLICIT))


def as_json(host: str, proxy: str | None, results: list[ModeResult]) -> str:
    document = {
        "host": host,
        "proxy": proxy,
        "ok": any(result.ok for result in results),
        "recommended": recommended(results),
        "before_tls": before_tls(results),
        "after_tls": after_tls(results),
        "modes": [_mode_json(result) for result in results],
    }
    return json.dumps(document, indent=2)


def _mode_json(result: ModeResult) -> dict[str, Any]:
    return {
        "mode": result.mode.name, "port": result.port, "ok": result.ok,
        "error": result.error, "error_type": result.error_type, "hint": result.hint,
        "greeting": result.greeting, "extensions": result.extensions,
        "auth_mechanisms": list(result.auth_mechanisms),
        "tls": ({"version": result.tls_version, "cipher": result.cipher}
                if result.tls_version else None),
        "certificate": result.certificate.as_dict() if result.certificate else None,
        "timings_ms": result.timings_ms,
    }


def as_text(host: str, proxy: str | None, results: list[ModeResult]) -> str:
    lines = [f"mailwire probe: {host}" + (f" via {proxy}" if proxy else ""), ""]
    for result in results:
        status = "ok" if result.ok else "skipped" if result.error_type == "NotTried" else "FAILED"
        detail = _timings(result.timings_ms) if result.ok else (result.error or "")
        lines.append(f"  {result.mode.name:<13} {result.port:<6} {status:<7} {detail}")
        if not result.ok and result.hint:
            lines.append(f"  {'':<13} {'':<6} {'':<7} -> {result.hint}")
    greeting = next((result.greeting for result in results if result.greeting), None)
    if greeting:
        lines += ["", f"greeting      {greeting}"]
    for title, section in (("before TLS", before_tls(results)),
                           ("after TLS", after_tls(results))):
        if section is not None:
            extensions = ", ".join(f"{key} {value}".strip()
                                   for key, value in section["extensions"].items()
                                   if key != "AUTH") or "none"
            lines.append(f"{title:<13} {extensions}  ({section['mode']})")
            lines.append(f"  AUTH        {' '.join(section['auth_mechanisms']) or 'none offered'}")
    tls = next((result for result in results if result.ok and result.tls_version), None)
    if tls is not None:
        lines.append(f"TLS           {tls.tls_version}, {tls.cipher}  ({tls.mode.name})")
        if tls.certificate is not None:
            lines += _certificate_lines(tls, host)
    advice = recommended(results)
    lines.append("")
    if advice is None:
        lines.append("no security mode works")
    else:
        note = f"  ({advice['note']})" if advice["note"] else ""
        lines.append(f"use           --security {advice['security']} --port {advice['port']}"
                     f"{note}")
    return "\n".join(printable(line) for line in lines)


def _certificate_lines(result: ModeResult, host: str) -> list[str]:
    certificate = result.certificate
    assert certificate is not None
    validity = (f"{certificate.not_before:%Y-%m-%d} to {certificate.not_after:%Y-%m-%d} "
                + ("(EXPIRED)" if certificate.expired else f"({certificate.days_left} days left)"))
    match = "matches" if certificate.host_name_matches else "DOES NOT MATCH"
    trusted = ("yes" if certificate.trusted
               else f"NO: {certificate.verify_error} (trust its CA with --ca-file)")
    return [
        f"certificate   subject   {certificate.subject}",
        f"              issuer    {certificate.issuer}"
        + ("  (self-signed)" if certificate.self_signed else ""),
        f"              valid     {validity}",
        f"              names     {', '.join(certificate.names) or 'none'}",
        f"              host name {host} {match}",
        f"              trusted   {trusted}",
    ]


def _timings(timings: dict[str, float]) -> str:
    return ", ".join(f"{_PHASE_NAMES.get(phase, phase)} {value:.1f} ms"
                     for phase, value in timings.items())
