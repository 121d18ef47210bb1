"""SmtpHandler against real servers: never blocking, batches, rate limit, bounded queue,
flush/close bounded in time, failures through handleError, dictConfig, forks, secrets."""

from __future__ import annotations

import logging
import logging.config
import os
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest

from mailwire.devserver import Certificates, DevServer, ReceivedMessage
from mailwire.integrations.logging import SmtpHandler
from tests.support.chaos import RawServer
from tests.support.pooling import PASSWORD, USER

Servers = Callable[..., DevServer]


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own, not propagating, with its handlers closed after the test."""
    log = logging.getLogger(f"test.mail.{time.monotonic_ns()}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def _handler(server: DevServer, **options: object) -> SmtpHandler:
    options.setdefault("security", "none")
    return SmtpHandler(("127.0.0.1", server.port), "app@example.com", ["ops@example.org"],
                       "App errors", **options)  # type: ignore[arg-type]


def _parsed(received: list[ReceivedMessage]) -> list[Message]:
    return [message_from_bytes(message.data) for message in received]


def _body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def _messages_after(server: DevServer, seconds: float) -> list[Message]:
    time.sleep(seconds)
    return _parsed(server.messages)


def test_records_of_one_interval_go_out_as_one_message(
    smtp_server: Servers, logger: logging.Logger
) -> None:
    server = smtp_server()
    logger.addHandler(_handler(server, batch_interval=0.3))
    for number in range(10):
        logger.error("failure number %d", number)
    [message] = _parsed(server.wait_for_messages(1))
    assert message["Subject"] == "App errors (10 records)"
    assert message["From"] == "app@example.com" and message["To"] == "ops@example.org"
    body = _body(message)
    assert [f"failure number {n}" in body for n in range(10)] == [True] * 10
    assert _messages_after(server, 0.5) == [message] or len(server.messages) == 1


def test_one_message_per_record_when_asked(smtp_server: Servers, logger: logging.Logger) -> None:
    server = smtp_server()
    logger.addHandler(_handler(server, batch=False, rate_burst=10))
    for number in range(3):
        logger.warning("record %d", number)
    messages = _parsed(server.wait_for_messages(3))
    assert sorted(_body(message).strip() for message in messages) == [
        "record 0", "record 1", "record 2"]
    assert {message["Subject"] for message in messages} == {"App errors"}


class RecordingHandler(SmtpHandler):
    """Keeps what ``handleError`` was given instead of printing it."""

    failures: list[BaseException | None]

    def handleError(self, record: logging.LogRecord) -> None:
        self.failures.append(sys.exc_info()[1])


def test_emit_never_waits_for_a_server_that_does_not_answer(
    raw_server: Callable[[Callable[[socket.socket], None]], RawServer],
    logger: logging.Logger,
) -> None:
    server = raw_server(lambda sock: server.stopping.wait(10))
    handler = RecordingHandler(("127.0.0.1", server.port), "app@example.com", "ops@example.org",
                               timeout=0.3, batch=False, rate_burst=100, security="none",
                               flush_timeout=0.3, close_timeout=1.0)
    handler.failures = []
    logger.addHandler(handler)
    started = time.monotonic()
    for number in range(200):
        logger.error("storm %d", number)
    assert time.monotonic() - started < 0.5
    started = time.monotonic()
    handler.flush()
    assert time.monotonic() - started < 1.0
    logger.removeHandler(handler)
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 2.0
    assert handler.failures
    assert all(type(error).__module__.startswith("mailwire") for error in handler.failures)


def test_a_storm_is_capped_by_the_queue_and_the_drop_is_reported(
    smtp_server: Servers, logger: logging.Logger
) -> None:
    server = smtp_server()
    handler = _handler(server, capacity=5, batch_interval=0.5)
    logger.addHandler(handler)
    for number in range(20):
        logger.error("storm %d", number)
    assert handler.dropped == 15
    handler.flush()
    [first] = _parsed(server.wait_for_messages(1))
    assert [f"storm {n}" in _body(first) for n in range(6)] == [True] * 5 + [False]
    assert "15 dropped because the queue was full (5 records)" in _body(first)
    logger.error("calm again")
    handler.flush()
    second = _parsed(server.wait_for_messages(2))[1]
    assert _body(second).strip() == "calm again"


def test_the_rate_limit_holds_records_back_and_combines_them(
    smtp_server: Servers, logger: logging.Logger
) -> None:
    server = smtp_server()
    handler = _handler(server, batch=False, rate_limit=0.5, rate_burst=2)
    logger.addHandler(handler)
    for number in range(10):
        logger.error("burst %d", number)
    first_two = _parsed(server.wait_for_messages(2))
    assert _body(first_two[0]).strip() == "burst 0"
    assert [f"burst {n}" in _body(first_two[1]) for n in range(1, 10)] == [True] * 9
    assert len(_messages_after(server, 0.7)) == 2
    logger.error("one more")
    time.sleep(0.5)
    assert len(server.messages) == 2, "sent before the rate limit allowed"
    handler.flush()
    assert len(server.wait_for_messages(3)) == 3


def test_flush_skips_the_batch_interval(smtp_server: Servers, logger: logging.Logger) -> None:
    server = smtp_server()
    handler = _handler(server, batch_interval=60.0)
    logger.addHandler(handler)
    logger.error("now please")
    started = time.monotonic()
    handler.flush()
    assert time.monotonic() - started < 2.0
    assert len(server.messages) == 1


def test_close_sends_what_the_rate_limit_held_back_as_one_last_message(
    smtp_server: Servers, logger: logging.Logger
) -> None:
    server = smtp_server()
    handler = _handler(server, rate_limit=0.01, rate_burst=1, batch_interval=0.05)
    logger.addHandler(handler)
    logger.error("first")
    server.wait_for_messages(1)
    for number in range(3):
        logger.error("held %d", number)
    time.sleep(0.3)
    assert len(server.messages) == 1
    logger.removeHandler(handler)
    handler.close()
    messages = _parsed(server.messages)
    assert len(messages) == 2
    assert all(f"held {n}" in _body(messages[1]) for n in range(3))
    logger.error("after close")
    assert len(server.messages) == 2


def test_a_refused_message_goes_to_handle_error_and_is_counted(
    smtp_server: Servers, logger: logging.Logger, capsys: pytest.CaptureFixture[str],
) -> None:
    server = smtp_server(refuse_recipients=["ops@example.org"])
    handler = _handler(server, batch_interval=0.05)
    logger.addHandler(handler)
    logger.error("nobody will read this")
    handler.flush()
    assert handler.dropped == 1
    assert "RecipientsRefusedError" in capsys.readouterr().err
    assert server.messages == []


def test_records_logged_while_sending_are_not_mailed(
    smtp_server: Servers, logger: logging.Logger
) -> None:
    server = smtp_server()
    root = logging.getLogger()
    protocol = logging.getLogger("mailwire.protocol")
    in_process_server = logging.getLogger("mail.log")  # aiosmtpd's, in this process for tests
    handler = _handler(server, batch_interval=0.05, rate_burst=50, rate_limit=50)
    saved = (root.level, protocol.level, in_process_server.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    protocol.setLevel(logging.DEBUG)
    in_process_server.setLevel(logging.WARNING)
    try:
        logging.getLogger("test.app").error("the only record")
        server.wait_for_messages(1)
        time.sleep(0.6)
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        protocol.setLevel(saved[1])
        in_process_server.setLevel(saved[2])
        handler.close()
    assert len(server.messages) == 1


def test_dict_config_builds_a_starttls_auth_handler(
    smtp_server: Servers, certificates: Certificates
) -> None:
    from mailwire.devserver import TlsMode

    server = smtp_server(tls=TlsMode.STARTTLS, credentials={USER: PASSWORD})
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"mail": {
            "class": "mailwire.integrations.logging.SmtpHandler",
            "level": "ERROR",
            "mailhost": ["127.0.0.1", server.port],
            "fromaddr": "app@example.com",
            "toaddrs": ["ops@example.org"],
            "subject": "dictConfig",
            "credentials": [USER, PASSWORD],
            "secure": [],
            "ca_file": str(certificates.ca_file),
            "batch_interval": 0.05,
        }},
        "loggers": {"test.dictconfig": {"handlers": ["mail"], "propagate": False}},
    })
    log = logging.getLogger("test.dictconfig")
    [handler] = log.handlers
    try:
        log.warning("below the level")
        log.error("configured")
        [received] = server.wait_for_messages(1)
        assert received.auth_user == USER and received.tls_version is not None
        body = _body(message_from_bytes(received.data))
        assert "configured" in body and "below the level" not in body
        assert PASSWORD not in repr(handler) and PASSWORD not in repr(vars(handler))
    finally:
        log.removeHandler(handler)
        handler.close()


def test_configuration_file_and_profile(
    smtp_server: Servers, logger: logging.Logger, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = smtp_server()
    config = tmp_path / "mailwire.toml"
    config.write_text('host = "mail.invalid"\n[profiles.alerts]\nhost = "127.0.0.1"\n'
                      f'port = {server.port}\nsecurity = "none"\nsender = "alerts@example.com"\n')
    for name in [name for name in os.environ if name.startswith("MAILWIRE_")]:
        monkeypatch.delenv(name)
    handler = SmtpHandler(toaddrs="ops@example.org", config=str(config), profile="alerts",
                          batch_interval=0.05)
    logger.addHandler(handler)
    logger.critical("from the profile")
    [message] = _parsed(server.wait_for_messages(1))
    assert message["From"] == "alerts@example.com"


def test_a_forked_child_starts_with_an_empty_queue(
    smtp_server: Servers, logger: logging.Logger
) -> None:
    server = smtp_server()
    handler = _handler(server, batch_interval=30.0)
    logger.addHandler(handler)
    logger.error("parent record")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        signal.alarm(20)
        logger.error("child record")
        handler.close()
        os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    [child] = _parsed(server.wait_for_messages(1))
    assert "child record" in _body(child) and "parent record" not in _body(child)
    handler.flush()
    parent = _parsed(server.wait_for_messages(2))[1]
    assert "parent record" in _body(parent) and "child record" not in _body(parent)
