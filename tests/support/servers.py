"""Fixtures that run the project's development SMTP server for a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from mailwire.devserver import Certificates, DevServer


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA and a server certificate for localhost, 127.0.0.1 and ::1."""
    return Certificates.generate(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="session")
def wrong_host_certificates(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Certificates:
    """Signed by the trusted CA, but for a host name no test connects to."""
    return certificates.issue_for(["wrong.example"], tmp_path_factory.mktemp("wrong-host"))


@pytest.fixture(scope="session")
def unknown_ca_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Right host names, signed by a CA that ``certificates.client_context()`` does not trust."""
    return Certificates.generate(tmp_path_factory.mktemp("unknown-ca"))


@pytest.fixture
def smtp_server(certificates: Certificates) -> Iterator[Callable[..., DevServer]]:
    """``smtp_server(**DevServer options)``: a started server, stopped after the test.

    ``certificates`` defaults to the session's, so ``tls=TlsMode.STARTTLS`` just works.
    """
    with ExitStack() as running:

        def start(**options: Any) -> DevServer:
            options.setdefault("certificates", certificates)
            return running.enter_context(DevServer(**options))

        yield start


@pytest.fixture(scope="session")
def server_pool(certificates: Certificates) -> Iterator[Callable[..., DevServer]]:
    """``server_pool(**DevServer options)``: one running server per configuration, shared by the
    whole session and emptied of messages each time it is handed out."""
    running: dict[tuple[tuple[str, str], ...], DevServer] = {}

    def get(**options: Any) -> DevServer:
        options.setdefault("certificates", certificates)
        key = tuple(sorted((name, repr(value)) for name, value in options.items()))
        if key not in running:
            running[key] = DevServer(**options)
            running[key].start()
        server = running[key]
        server.clear()
        return server

    yield get
    for server in running.values():
        server.stop()
