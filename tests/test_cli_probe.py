"""``mailwire probe`` as a subprocess against plaintext, STARTTLS and implicit-TLS servers, a
certificate for the wrong host, a port where nothing listens, and through an HTTP proxy."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailwire.devserver import Certificates, DevServer, TlsMode
from tests.support.cli import run_cli
from tests.support.proxies import RunningProxy

StartServer = Callable[..., DevServer]
FAST = ("--timeout", "3", "--greeting-timeout", "0.5")


def probe_json(tmp_path: Path, target: str, *options: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("probe", target, "--json", *FAST, *options, cwd=tmp_path)
    assert result.stderr == "", result.stderr
    return result.returncode, json.loads(result.stdout)


def modes(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {mode["mode"]: mode for mode in report["modes"]}


def test_plaintext_server(smtp_server: StartServer, tmp_path: Path) -> None:
    server = smtp_server()
    status, report = probe_json(tmp_path, f"127.0.0.1:{server.port}")
    assert status == 0
    by_mode = modes(report)
    assert list(by_mode) == ["NONE", "SSL_EXPLICIT", "SSL_IMPLICIT"]
    plain = by_mode["NONE"]
    assert plain["ok"] and plain["port"] == server.port
    assert plain["greeting"] == "220 localhost ESMTP mailwire devserver"
    assert "PIPELINING" in plain["extensions"] and plain["tls"] is None
    assert set(plain["timings_ms"]) == {"connect", "greeting", "ehlo"}
    assert not by_mode["SSL_EXPLICIT"]["ok"]
    assert "does not offer STARTTLS" in by_mode["SSL_EXPLICIT"]["error"]
    implicit = by_mode["SSL_IMPLICIT"]
    assert not implicit["ok"] and implicit["error_type"] == "TlsNotSpokenError"
    assert "SSL_EXPLICIT" in implicit["hint"]
    assert report["recommended"]["security"] == "none"
    assert "plaintext only" in report["recommended"]["note"]
    assert report["after_tls"] is None


def test_starttls_server_with_auth_after_tls(
    smtp_server: StartServer, certificates: Certificates, tmp_path: Path
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS, credentials={"u": "p"})
    status, report = probe_json(tmp_path, f"127.0.0.1:{server.port}",
                                "--ca-file", str(certificates.ca_file))
    assert status == 0
    explicit = modes(report)["SSL_EXPLICIT"]
    assert explicit["ok"] and explicit["tls"]["version"].startswith("TLSv1.")
    assert explicit["tls"]["cipher"]
    assert {"connect", "greeting", "ehlo", "starttls", "tls_handshake",
            "ehlo_after_tls"} <= set(explicit["timings_ms"])
    certificate = explicit["certificate"]
    assert certificate["trusted"] is True and certificate["verify_error"] is None
    assert certificate["host_name_matches"] is True
    assert "127.0.0.1" in certificate["names"] and certificate["days_left"] > 0
    assert certificate["subject"] and certificate["issuer"] and len(certificate["sha256"]) == 64
    assert report["before_tls"]["auth_mechanisms"] == []
    assert "STARTTLS" in report["before_tls"]["extensions"]
    assert report["after_tls"]["mode"] == "SSL_EXPLICIT"
    assert "PLAIN" in report["after_tls"]["auth_mechanisms"]
    assert report["recommended"] == {"security": "ssl_explicit", "port": server.port,
                                     "note": None}


def test_untrusted_certificate_is_reported_not_hidden(
    smtp_server: StartServer, tmp_path: Path
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS)
    status, report = probe_json(tmp_path, f"127.0.0.1:{server.port}")
    assert status == 0
    certificate = modes(report)["SSL_EXPLICIT"]["certificate"]
    assert certificate["trusted"] is False
    assert "unable to get local issuer certificate" in certificate["verify_error"]
    assert certificate["host_name_matches"] is True
    assert "not trusted" in report["recommended"]["note"]


def test_certificate_for_another_host(
    smtp_server: StartServer, wrong_host_certificates: Certificates,
    certificates: Certificates, tmp_path: Path
) -> None:
    server = smtp_server(tls=TlsMode.IMPLICIT, certificates=wrong_host_certificates)
    status, report = probe_json(tmp_path, f"127.0.0.1:{server.port}",
                                "--ca-file", str(certificates.ca_file))
    assert status == 0
    certificate = modes(report)["SSL_IMPLICIT"]["certificate"]
    assert certificate["names"] == ["wrong.example"]
    assert certificate["host_name_matches"] is False
    assert certificate["trusted"] is False and "mismatch" in certificate["verify_error"].lower()


def test_implicit_tls_server(
    smtp_server: StartServer, certificates: Certificates, tmp_path: Path
) -> None:
    server = smtp_server(tls=TlsMode.IMPLICIT)
    result = run_cli("probe", f"127.0.0.1:{server.port}", *FAST, "--ca-file",
                     str(certificates.ca_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"SSL_IMPLICIT  {server.port}" in text and "ok" in text
    # One port for every mode: implicit TLS is tried first, and once it works the plaintext
    # modes are not tried (they would only wait out the greeting).
    assert f"NONE          {server.port}  skipped" in text
    assert "not tried: the port completed a TLS handshake" in text
    assert "certificate   subject" in text and "host name 127.0.0.1 matches" in text
    assert "trusted   yes" in text
    assert f"use           --security ssl_implicit --port {server.port}" in text


def test_nothing_listening(tmp_path: Path) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    status, report = probe_json(tmp_path, f"127.0.0.1:{port}")
    assert status == 3
    assert report["ok"] is False and report["recommended"] is None
    for mode in report["modes"]:
        assert mode["ok"] is False and mode["port"] == port
        assert mode["error"] == f"connection to 127.0.0.1:{port} refused"
        assert mode["hint"] == f"nothing listens on 127.0.0.1:{port}"
    text = run_cli("probe", f"127.0.0.1:{port}", *FAST, cwd=tmp_path)
    assert text.returncode == 3
    assert "no security mode works" in text.stdout


def test_default_ports_without_a_port(tmp_path: Path) -> None:
    _status, report = probe_json(tmp_path, "127.0.0.1")
    assert [(mode["mode"], mode["port"]) for mode in report["modes"]] == [
        ("NONE", 587), ("SSL_EXPLICIT", 587), ("SSL_IMPLICIT", 465)]


def test_through_an_http_proxy(
    smtp_server: StartServer, http_proxy: RunningProxy, certificates: Certificates,
    tmp_path: Path
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS)
    status, report = probe_json(tmp_path, f"127.0.0.1:{server.port}", "--proxy",
                                http_proxy.url, "--ca-file", str(certificates.ca_file))
    assert status == 0
    assert report["proxy"] == http_proxy.url
    assert modes(report)["SSL_EXPLICIT"]["ok"]
    assert modes(report)["SSL_EXPLICIT"]["certificate"]["trusted"] is True


def test_bad_target(tmp_path: Path) -> None:
    result = run_cli("probe", "127.0.0.1:notaport", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("mailwire: error: ")
