"""mailwire's Celery tasks on a real Celery worker (two prefork processes) over a real Redis.

The counting servers tally every message by its ``X-Soak-Id``; the tasks' JSON results must
agree with that tally message by message: "sent" exactly once, "failed" never, "unknown" at
most once, and nothing twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, group

from mailwire.devserver import Certificates, DevServer, TlsMode
from mailwire.integrations.celery import MailTasks, message_payload, path_payload
from tests.support.celery_app import make_app
from tests.support.celery_worker import RunningRedis
from tests.support.chaos import ChaosServer, Faults
from tests.support.pooling import PASSWORD, USER, labelled

Worker = Callable[..., Any]


@pytest.fixture
def client_app(redis_server: RunningRedis) -> Iterator[tuple[Celery, MailTasks]]:
    app, tasks = make_app(redis_server.url)
    yield app, tasks
    app.close()


def _config(tmp_path: Path, profile: str, host: str, port: int, *extra: str) -> Path:
    path = tmp_path / "mailwire.toml"
    lines = [f"[profiles.{profile}]", f'host = "{host}"', f"port = {port}", *extra]
    path.write_text("\n".join(lines) + "\n")
    return path


def _send_all(tasks: MailTasks, payloads: list[dict[str, Any]], profile: str,
              timeout: float = 120.0) -> list[dict[str, Any]]:
    job = group(tasks.send_message.s(payload, profile=profile) for payload in payloads)
    results: list[dict[str, Any]] = job.apply_async().join_native(timeout=timeout)
    return results


def _outcomes(results: list[dict[str, Any]]) -> Counter[str]:
    return Counter(result["status"] for result in results)


def test_two_thousand_messages_arrive_exactly_once(
    celery_worker: Worker, client_app: tuple[Celery, MailTasks],
    counting_server: Callable[..., ChaosServer], tmp_path: Path,
) -> None:
    sink = counting_server()
    celery_worker(_config(tmp_path, "sink", sink.host, sink.port, 'security = "none"'))
    _, tasks = client_app
    started = time.monotonic()
    results = _send_all(tasks, [message_payload(labelled(n)) for n in range(2000)], "sink")
    elapsed = time.monotonic() - started
    assert _outcomes(results) == {"sent": 2000}
    assert sink.counts == {str(n): 1 for n in range(2000)}
    assert sink.stats.connections <= 4, "expected one pooled connection per worker process"
    print(f"\n2,000 Celery tasks, 2 worker processes: {elapsed:.1f} s "
          f"({2000 / elapsed:.0f} messages/s)")


def test_a_sink_that_drops_connections_gets_each_message_once_or_it_is_reported(
    celery_worker: Worker, client_app: tuple[Celery, MailTasks],
    chaos_server: Callable[..., ChaosServer], tmp_path: Path,
) -> None:
    faults = Faults(greeting_421=0.01, greeting_drop=0.01, ehlo_421=0.0, ehlo_drop=0.01,
                    mail_451=0.02, mail_421=0.01, mail_drop=0.01, rcpt_451=0.02, rcpt_421=0.0,
                    rcpt_drop=0.01, data_451=0.01, data_421=0.01, data_drop=0.01,
                    refuse_451=0.02, refuse_554=0.01, drop_before_count=0.01,
                    drop_after_count=0.02, silent_after_count=0.002, silence=1.5)
    sink = chaos_server(faults, seed=12)
    celery_worker(_config(tmp_path, "chaos", sink.host, sink.port, 'security = "none"',
                          "timeout = 0.5"))
    _, tasks = client_app
    results = _send_all(tasks, [message_payload(labelled(n)) for n in range(2000)], "chaos")
    counts = sink.counts
    for number, result in enumerate(results):
        kept = counts.get(str(number), 0)
        if result["status"] == "sent":
            assert kept == 1, (number, result)
        elif result["status"] == "failed":
            assert kept == 0, (number, result)
        else:
            assert result["status"] == "unknown" and kept <= 1, (number, result)
    assert sum(counts.values()) == sum(counts.get(str(n), 0) for n in range(2000))
    assert max(counts.values()) == 1
    outcomes = _outcomes(results)
    assert outcomes["sent"] >= 1800, outcomes
    assert outcomes["unknown"] >= 1, "the faults after the end of data never happened"
    assert any(result["attempts"] > 1 for result in results if result["status"] == "sent")
    refused = [number for number, result in enumerate(results)
               if result["status"] == "failed" and result["code"] == 554]
    assert refused and all("chaos: message refused" in results[number]["reply"]
                           for number in refused)
    # A permanent refusal ends the message: the server refused each of them exactly once (an
    # earlier transient failure may have taken an attempt of its own).
    refusals = sink.refusals()
    assert all(refusals[str(number)] == 1 for number in refused), refusals


def test_a_connection_lost_after_the_data_is_reported_not_retried(
    celery_worker: Worker, client_app: tuple[Celery, MailTasks],
    chaos_server: Callable[..., ChaosServer], tmp_path: Path,
) -> None:
    sink = chaos_server(replace(Faults.none(), drop_after_count=1.0))
    celery_worker(_config(tmp_path, "lossy", sink.host, sink.port, 'security = "none"'))
    _, tasks = client_app
    results = _send_all(tasks, [message_payload(labelled(n)) for n in range(20)], "lossy")
    assert _outcomes(results) == {"unknown": 20}
    assert all(result["attempts"] == 1 and result["error"] == "DeliveryUnknownError"
               for result in results)
    assert sink.counts == {str(n): 1 for n in range(20)}


def test_batches_pipeline_and_refusals_carry_the_servers_reply(
    celery_worker: Worker, client_app: tuple[Celery, MailTasks],
    smtp_server: Callable[..., DevServer], tmp_path: Path,
) -> None:
    server = smtp_server(refuse_recipients=["nobody@example.org"])
    celery_worker(_config(tmp_path, "dev", "127.0.0.1", server.port, 'security = "none"'))
    _, tasks = client_app
    payloads = [message_payload(labelled(n)) for n in range(100)]
    payloads[7] = message_payload(labelled(7), recipients=["nobody@example.org"])
    payloads[8] = {"data": "not base64!"}
    batches = [tasks.send_batch.s(payloads[start:start + 25], profile="dev")
               for start in range(0, 100, 25)]
    results = [result for batch in group(batches).apply_async().join_native(timeout=60)
               for result in batch]
    assert _outcomes(results) == {"sent": 98, "failed": 2}
    assert results[7]["code"] == 550 and "Recipient address rejected" in results[7]["reply"]
    assert results[7]["transient"] is False
    assert results[8]["error"] == "SmtpUsageError" and "base64" in results[8]["message"]
    assert len(server.wait_for_messages(98)) == 98


def test_stored_messages_only_from_the_allowed_directory(
    celery_worker: Worker, client_app: tuple[Celery, MailTasks],
    smtp_server: Callable[..., DevServer], tmp_path: Path,
) -> None:
    server = smtp_server()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "one.eml").write_bytes(labelled("stored"))
    secret = tmp_path / "secret.eml"
    secret.write_bytes(labelled("secret"))
    celery_worker(_config(tmp_path, "dev", "127.0.0.1", server.port, 'security = "none"'),
                  eml_directory=outbox)
    _, tasks = client_app
    results = _send_all(tasks, [path_payload(outbox / "one.eml"), path_payload(secret),
                                path_payload(outbox / ".." / "secret.eml")], "dev")
    assert [result["status"] for result in results] == ["sent", "failed", "failed"]
    assert "not inside the directories" in results[1]["message"]
    [message] = server.wait_for_messages(1)
    assert b"X-Soak-Id: stored" in message.data


def test_no_password_in_task_messages_results_or_logs(
    celery_worker: Worker, client_app: tuple[Celery, MailTasks], redis_server: RunningRedis,
    smtp_server: Callable[..., DevServer], certificates: Certificates, tmp_path: Path,
) -> None:
    import redis

    server = smtp_server(tls=TlsMode.STARTTLS, credentials={USER: PASSWORD},
                         refuse_recipients=["nobody@example.org"])
    worker = celery_worker(_config(
        tmp_path, "secure", "127.0.0.1", server.port, 'security = "ssl_explicit"',
        f'username = "{USER}"', f'password = "{PASSWORD}"', f'ca_file = "{certificates.ca_file}"'))
    _, tasks = client_app
    payloads = [message_payload(labelled(n)) for n in range(5)]
    payloads.append(message_payload(labelled(5), recipients=["nobody@example.org"]))
    results = _send_all(tasks, payloads, "secure")
    assert _outcomes(results) == {"sent": 5, "failed": 1}
    assert {message.auth_user for message in server.wait_for_messages(5)} == {USER}
    store = redis.Redis(port=redis_server.port)
    seen = 0
    for key in store.scan_iter():
        kind = store.type(key)
        values = ([store.get(key)] if kind == b"string" else
                  store.lrange(key, 0, -1) if kind == b"list" else
                  list(store.hgetall(key).values()) if kind == b"hash" else [])
        for value in values:
            seen += 1
            assert PASSWORD.encode() not in (value or b""), key
    assert seen >= 6
    assert PASSWORD not in str(results)
    assert PASSWORD not in Path(worker.log).read_text()
