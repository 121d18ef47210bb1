"""Celery tasks that send mail with mailwire: ``register_tasks(app, config=..., ...)``.

Two tasks are registered on the application: ``<name>.send_message(payload, profile=None)`` and
``<name>.send_batch(payloads, profile=None)``. A payload is JSON: ``{"data": <base64 of the
message bytes>, "sender": ..., "recipients": [...]}`` (build it with ``message_payload``) or
``{"path": "/outbox/1.eml", ...}`` for a stored message inside one of ``eml_directories``
(``path_payload``). Connection settings never travel in a task: the worker reads them from its
mailwire configuration, and a task names at most a profile of it.

Each worker process keeps its own pool (``mailwire.integrations.shared_pools``), so there is no
connect or AUTH per message; the pools are QUIT when the worker process ends.

What a task returns (always JSON): ``{"status": "sent", "accepted": [...], "refused": {...},
"reply": "250 ...", "attempts": n}``, or ``"failed"`` / ``"unknown"`` with ``error``,
``message``, ``code``, ``enhanced_code``, ``reply`` and ``transient``. Retries:
- transient failures (4xx, 421, a connection lost or a timeout before the end of the data) are
  retried with Celery's retry, waiting ``retry_backoff`` seconds doubled each time (at most
  ``retry_backoff_max``, with jitter), ``max_retries`` times; then the task returns "failed";
- permanent failures (5xx, a bad message or payload) return "failed" at once, with the server's
  reply;
- a connection lost after the end of the data returns "unknown": the server may have accepted
  the message, so it is not retried (at most once) unless ``retry_unknown=True`` (at least
  once: a message may then arrive twice).
Keep Celery's default early acknowledgement for these tasks: with ``acks_late`` a worker that
dies mid-send would have the message sent again.
"""

from __future__ import annotations

import base64
import binascii
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from mailwire.errors import (
    ConfigError,
    DeliveryUnknownError,
    ProxyAuthenticationError,
    SmtpConnectionError,
    SmtpError,
    SmtpResponseError,
    SmtpTimeoutError,
    SmtpUsageError,
)
from mailwire.integrations import missing_extra
from mailwire.integrations.shared_pools import close_shared_pools, shared_pool
from mailwire.outgoing import Outgoing
from mailwire.pool import SmtpPool
from mailwire.results import SendResult

try:
    from celery import Celery, Task
    from celery.signals import worker_process_shutdown
except ImportError as error:  # pragma: no cover - depends on the environment
    raise missing_extra("Celery", "celery") from error

Result = dict[str, Any]


@dataclass(frozen=True)
class MailTasks:
    """The registered tasks: ``send_message.delay(payload)``, ``send_batch.delay(payloads)``."""

    send_message: Task
    send_batch: Task


@dataclass(frozen=True)
class _Policy:
    config: str | None
    options: Mapping[str, Any]
    max_retries: int
    retry_backoff: float
    retry_backoff_max: float
    retry_jitter: bool
    retry_unknown: bool
    eml_directories: tuple[Path, ...]
    batch_attempts: int

    def pool(self, profile: str | None) -> SmtpPool:
        options = dict(self.options)
        if self.config is not None:
            options["config"] = self.config
        if profile is not None:
            options["profile"] = profile
        return shared_pool(options)

    def countdown(self, retries: int) -> float:
        delay = min(self.retry_backoff * 2 ** retries, self.retry_backoff_max)
        return random.uniform(delay / 2, delay) if self.retry_jitter else delay


def register_tasks(
    app: Celery,
    *,
    config: str | os.PathLike[str] | None = None,
    options: Mapping[str, Any] | None = None,
    name: str = "mailwire",
    max_retries: int = 5,
    retry_backoff: float = 5.0,
    retry_backoff_max: float = 600.0,
    retry_jitter: bool = True,
    retry_unknown: bool = False,
    eml_directories: Iterable[str | os.PathLike[str]] = (),
    batch_attempts: int = 3,
) -> MailTasks:
    """Register the mail tasks on ``app``. ``config`` names the workers' mailwire configuration
    (default: the search order of ``mailwire.load_settings``, ``$MAILWIRE_CONFIG`` first);
    ``options`` are fixed extra options (``max_connections``, ``timeout``, ... but no secrets:
    keep those in the configuration). Paths in payloads must lie in ``eml_directories``."""
    policy = _Policy(
        config=None if config is None else os.fspath(config), options=dict(options or {}),
        max_retries=max_retries, retry_backoff=retry_backoff,
        retry_backoff_max=retry_backoff_max, retry_jitter=retry_jitter,
        retry_unknown=retry_unknown,
        eml_directories=tuple(Path(directory).resolve() for directory in eml_directories),
        batch_attempts=batch_attempts)

    def send_message(task: Task, payload: Mapping[str, Any],
                     profile: str | None = None) -> Result:
        attempts = task.request.retries + 1
        try:
            outgoing = _decode(payload, policy.eml_directories)
            result = policy.pool(profile).send(outgoing.message, sender=outgoing.sender,
                                               recipients=outgoing.recipients)
        except ConfigError:
            raise
        except SmtpError as error:
            kind = classify(error)
            retry = kind == "transient" or (kind == "unknown" and policy.retry_unknown)
            if retry and task.request.retries < policy.max_retries:
                raise task.retry(countdown=policy.countdown(task.request.retries),
                                 exc=_portable(error)) from None
            return failure(error, attempts)
        return success(result, attempts)

    message_task = app.task(bind=True, name=f"{name}.send_message",
                            max_retries=max_retries)(send_message)

    def send_batch(task: Task, payloads: Sequence[Mapping[str, Any]],
                   profile: str | None = None) -> list[Result]:
        results: list[Result | None] = [None] * len(payloads)
        ready: list[tuple[int, Outgoing]] = []
        for index, payload in enumerate(payloads):
            try:
                ready.append((index, _decode(payload, policy.eml_directories)))
            except SmtpError as error:
                results[index] = failure(error, 1)
        pool = policy.pool(profile)
        for outcome in pool.send_many([outgoing for _, outgoing in ready],
                                      max_attempts=policy.batch_attempts):
            index = ready[outcome.index][0]
            if outcome.result is not None:
                results[index] = success(outcome.result, outcome.attempts)
                continue
            assert outcome.error is not None
            if classify(outcome.error) == "transient" and policy.max_retries > 0:
                later = message_task.apply_async((payloads[index],), {"profile": profile},
                                                 countdown=policy.countdown(0))
                results[index] = {**failure(outcome.error, outcome.attempts),
                                  "status": "retrying", "task_id": later.id}
            else:
                results[index] = failure(outcome.error, outcome.attempts)
        return [result for result in results if result is not None]

    batch_task = app.task(bind=True, name=f"{name}.send_batch")(send_batch)
    return MailTasks(message_task, batch_task)


def _close_pools(**_: Any) -> None:
    close_shared_pools()


worker_process_shutdown.connect(_close_pools, weak=False)


# -- payloads ----------------------------------------------------------------------------------


def message_payload(message: bytes | Message, *, sender: str | None = None,
                    recipients: Iterable[str] | None = None) -> dict[str, Any]:
    """A JSON-safe payload for ``send_message``: the message bytes in base64 and the envelope
    (taken from the headers by the worker when not given)."""
    data = message if isinstance(message, bytes) else message.as_bytes()
    payload: dict[str, Any] = {"data": base64.b64encode(data).decode("ascii")}
    return _with_envelope(payload, sender, recipients)


def path_payload(path: str | os.PathLike[str], *, sender: str | None = None,
                 recipients: Iterable[str] | None = None) -> dict[str, Any]:
    """A payload naming a stored ``.eml`` file the workers can read."""
    return _with_envelope({"path": os.fspath(path)}, sender, recipients)


def _with_envelope(payload: dict[str, Any], sender: str | None,
                   recipients: Iterable[str] | None) -> dict[str, Any]:
    if sender is not None:
        payload["sender"] = sender
    if recipients is not None:
        payload["recipients"] = list(recipients)
    return payload


def _decode(payload: Mapping[str, Any], directories: tuple[Path, ...]) -> Outgoing:
    if not isinstance(payload, Mapping):
        raise SmtpUsageError("a mail payload is a JSON object with data or path")
    sender, recipients = payload.get("sender"), payload.get("recipients")
    if sender is not None and not isinstance(sender, str):
        raise SmtpUsageError("payload sender must be a string")
    if recipients is not None and not (isinstance(recipients, list)
                                       and all(isinstance(r, str) for r in recipients)):
        raise SmtpUsageError("payload recipients must be a list of strings")
    if "data" in payload:
        try:
            data = base64.b64decode(payload["data"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise SmtpUsageError("payload data is not valid base64") from None
        return Outgoing(data, sender, recipients)
    if "path" in payload and isinstance(payload["path"], str):
        return Outgoing(_allowed_path(payload["path"], directories), sender, recipients)
    raise SmtpUsageError("a mail payload needs data (base64) or path")


def _allowed_path(text: str, directories: tuple[Path, ...]) -> Path:
    path = Path(text).resolve()
    if not any(path.is_relative_to(directory) for directory in directories):
        raise SmtpUsageError(f"path {text!r} is not inside the directories this worker sends "
                             "from (register_tasks(eml_directories=...))")
    return path


# -- results ----------------------------------------------------------------------------------


def classify(error: SmtpError) -> str:
    """"unknown" (maybe delivered), "transient" (worth trying later) or "permanent"."""
    if isinstance(error, DeliveryUnknownError):
        return "unknown"
    if isinstance(error, SmtpResponseError):
        return "transient" if error.code is not None and 400 <= error.code < 500 else "permanent"
    if isinstance(error, ProxyAuthenticationError):
        return "permanent"
    if isinstance(error, SmtpConnectionError | SmtpTimeoutError):
        return "transient"
    return "permanent"


def success(result: SendResult, attempts: int) -> Result:
    return {"status": "sent", "accepted": list(result.accepted),
            "refused": {address: reply.describe() for address, reply in result.refused.items()},
            "reply": result.reply.describe(), "attempts": attempts}


def failure(error: SmtpError, attempts: int) -> Result:
    kind = classify(error)
    return {"status": "unknown" if kind == "unknown" else "failed",
            "error": type(error).__name__, "message": str(error), "code": error.code,
            "enhanced_code": error.enhanced_code,
            "reply": None if error.reply is None else error.reply.describe(),
            "transient": kind == "transient", "attempts": attempts}


def _portable(error: SmtpError) -> Exception:
    """What Celery stores while a task waits to be retried: a plain exception, so the result
    backend never needs to rebuild mailwire's classes (JSON results carry type and message)."""
    return RuntimeError(f"{type(error).__name__}: {error}")
