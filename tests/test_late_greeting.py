"""A server that greets late (a tarpit, Postfix's postscreen greet pause: here mailwire's own
development server behind a relay that holds its greeting back) meets AUTO and ``probe``.

AUTO tries a TLS handshake at ``greeting_timeout``; the late plaintext greeting answers it.
AUTO recognizes that, connects once more waiting ``timeout`` for the greeting, and the message
goes over STARTTLS. When that cannot work, the error says what happened and what to change;
``probe`` says the same and takes about one greeting wait (issue 11).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire import SecurityOptions, SmtpSecurityError, SmtpTimeoutError
from mailwire.devserver import Certificates, DevServer, TlsMode
from tests.support.cli import run_cli
from tests.support.clients import ClientFactory
from tests.support.greet_pause import GreetPause

PAUSE = 1.0
GREETING_TIMEOUT = 0.3
MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: late\r\n\r\nbody\r\n"
Paused = Callable[[tuple[str, int], float], GreetPause]


def test_a_late_greeter_gets_its_message_over_starttls(
    smtp_server: Callable[..., DevServer], greet_pause: Paused, make_client: ClientFactory,
    certificates: Certificates,
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS)
    relay = greet_pause((server.host, server.port), PAUSE)
    client = make_client("localhost", relay.port, security=SecurityOptions.AUTO, timeout=5,
                         greeting_timeout=GREETING_TIMEOUT, ca_file=str(certificates.ca_file))
    started = time.monotonic()
    client.send(MESSAGE)
    elapsed = time.monotonic() - started
    assert client.connection_info.security is SecurityOptions.SSL_EXPLICIT
    client.quit()
    assert PAUSE * 2 <= elapsed < PAUSE * 2 + 2
    assert [m.data for m in server.wait_for_messages(1)] == [MESSAGE]


def test_a_late_greeter_without_starttls_says_what_to_change(
    smtp_server: Callable[..., DevServer], greet_pause: Paused, make_client: ClientFactory,
) -> None:
    server = smtp_server()
    relay = greet_pause((server.host, server.port), PAUSE)
    client = make_client("127.0.0.1", relay.port, security=SecurityOptions.AUTO, timeout=5,
                         greeting_timeout=GREETING_TIMEOUT)
    with pytest.raises(SmtpSecurityError) as refused:
        client.send(MESSAGE)
    text = str(refused.value)
    assert f"127.0.0.1:{relay.port} greeted in plaintext only after" in text
    assert "greeting_timeout (0.3 s)" in text and "set greeting_timeout above" in text
    assert server.messages == []


def test_a_server_that_greets_later_than_the_handshake_waits_says_so(
    smtp_server: Callable[..., DevServer], greet_pause: Paused, make_client: ClientFactory,
) -> None:
    server = smtp_server()
    relay = greet_pause((server.host, server.port), 2.0)
    client = make_client("127.0.0.1", relay.port, security=SecurityOptions.AUTO, timeout=1.2,
                         greeting_timeout=GREETING_TIMEOUT)
    with pytest.raises(SmtpTimeoutError) as timed_out:
        client.connect()
    text = str(timed_out.value)
    assert f"with 127.0.0.1:{relay.port}" in text
    assert "no greeting within greeting_timeout (0.3 s)" in text
    assert "raise greeting_timeout" in text


def test_probe_names_the_late_greeting_instead_of_going_round_in_circles(
    smtp_server: Callable[..., DevServer], greet_pause: Paused, certificates: Certificates,
    tmp_path: Path,
) -> None:
    server = smtp_server(tls=TlsMode.STARTTLS)
    relay = greet_pause((server.host, server.port), 1.5)
    began = time.monotonic()
    result = run_cli("probe", f"localhost:{relay.port}", "--greeting-timeout", "0.5",
                     "--ca-file", str(certificates.ca_file), "--json", cwd=tmp_path)
    elapsed = time.monotonic() - began
    report = json.loads(result.stdout)
    modes = {mode["mode"]: mode for mode in report["modes"]}
    assert modes["SSL_EXPLICIT"]["ok"], modes
    assert "greets only after" in modes["SSL_EXPLICIT"]["hint"]
    assert "--greeting-timeout above" in modes["SSL_EXPLICIT"]["hint"]
    assert "greeting of a server that greets late" in modes["SSL_IMPLICIT"]["hint"]
    assert report["recommended"]["security"] == "ssl_explicit"
    assert elapsed < 1.5 * 2 + 4


def test_probe_of_an_implicit_tls_port_takes_no_greeting_wait(
    smtp_server: Callable[..., DevServer], certificates: Certificates, tmp_path: Path,
) -> None:
    server = smtp_server(tls=TlsMode.IMPLICIT)
    began = time.monotonic()
    result = run_cli("probe", f"localhost:{server.port}", "--greeting-timeout", "3",
                     "--ca-file", str(certificates.ca_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - began < 3, "the plaintext modes waited out the greeting"
    assert "SSL_IMPLICIT" in result.stdout and "skipped" in result.stdout
