"""``EmailBackend``: Django's email backend on mailwire, over a process-wide connection pool.

Django 6.1+ ``MAILERS``::

    MAILERS = {"default": {"BACKEND": "mailwire.integrations.django.EmailBackend",
                           "OPTIONS": {"host": "smtp.example.com", "use_tls": True, ...}}}

Django 4.2 to 6.0: ``EMAIL_BACKEND = "mailwire.integrations.django.EmailBackend"`` with the
classic ``EMAIL_*`` settings, and a ``MAILWIRE`` dict for every other option.

Options: Django's SMTP backend's (``host``, ``port``, ``username``, ``password``, ``use_tls``,
``use_ssl``, ``timeout``, ``ssl_certfile``, ``ssl_keyfile``, ``fail_silently``), every option of
``mailwire.integrations.shared_pools`` (``config``, ``profile``, ``security``, ``proxy``, ...,
``max_connections``), and ``connections`` (how many pooled connections one ``send_messages``
may use). Where they differ from Django's SMTP backend:
- Neither ``use_tls`` nor ``use_ssl`` means mailwire's ``AUTO`` (STARTTLS whenever the server
  offers it, credentials never in plaintext), not plaintext.
- ``send_messages`` pipelines the whole batch and tries every message; if any failed (and not
  ``fail_silently``) it then raises the first failure, a ``mailwire.SmtpError``.
- ``close()`` gives the connection back to the pool (still open, for the next request) instead
  of closing it; connections are QUIT when idle for ``idle_timeout`` seconds.
"""

from __future__ import annotations

import email.policy
import inspect
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from email.headerregistry import Address, AddressHeader
from typing import Any

from mailwire.client import SmtpClient
from mailwire.errors import ConfigError, SmtpError, SmtpUsageError
from mailwire.integrations import missing_extra
from mailwire.integrations.shared_pools import OPTIONS, shared_pool
from mailwire.outgoing import Outgoing
from mailwire.pool import SmtpPool
from mailwire.results import BulkResult

try:
    from django.conf import settings
    from django.core.mail.backends.base import BaseEmailBackend
    from django.core.mail.message import EmailMessage
except ImportError as error:  # pragma: no cover - depends on the environment
    raise missing_extra("Django", "django") from error

_CLASSIC_SETTINGS = {
    "host": "EMAIL_HOST", "port": "EMAIL_PORT", "username": "EMAIL_HOST_USER",
    "password": "EMAIL_HOST_PASSWORD", "use_tls": "EMAIL_USE_TLS", "use_ssl": "EMAIL_USE_SSL",
    "timeout": "EMAIL_TIMEOUT", "ssl_certfile": "EMAIL_SSL_CERTFILE",
    "ssl_keyfile": "EMAIL_SSL_KEYFILE",
}
_BACKEND_OPTIONS = frozenset({"connections"})
_MESSAGE_TAKES_POLICY = "policy" in inspect.signature(EmailMessage.message).parameters


class EmailBackend(BaseEmailBackend):  # type: ignore[misc]
    """Sends Django ``EmailMessage`` objects with mailwire; see the module docstring."""

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        fail_silently: bool = False,
        use_ssl: bool | None = None,
        timeout: float | None = None,
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        **kwargs: Any,
    ) -> None:
        given = {"host": host, "port": port, "username": username, "password": password,
                 "use_tls": use_tls, "use_ssl": use_ssl, "timeout": timeout,
                 "ssl_keyfile": ssl_keyfile, "ssl_certfile": ssl_certfile}
        given |= {name: kwargs.pop(name) for name in list(kwargs)
                  if name in OPTIONS | _BACKEND_OPTIONS}
        super().__init__(**kwargs)
        self.fail_silently = fail_silently
        alias = getattr(self, "alias", None)
        merged = _merge(_classic_settings() if alias is None else {}, given)
        self.connections = int(merged.pop("connections", 1))
        self._options = _pool_options(merged, alias)
        self._pool: SmtpPool | None = None
        self._lease: AbstractContextManager[SmtpClient] | None = None
        self._client: SmtpClient | None = None
        self._lock = threading.RLock()

    @property
    def pool(self) -> SmtpPool:
        """The process-wide pool these options share (made on first use)."""
        if self._pool is None or self._pool.closed:
            self._pool = shared_pool(self._options)
        return self._pool

    def open(self) -> bool | None:
        """Hold a pooled, connected client until ``close()``: True when this call took it,
        False when one was already held, None when it failed and ``fail_silently``."""
        with self._lock:
            if self._client is not None:
                return False
            try:
                lease = self.pool.borrow()
                client = lease.__enter__()
            except SmtpError:
                if self.fail_silently:
                    return None
                raise
            try:
                if not client.is_connected:
                    client.connect()
            except SmtpError as failure:
                lease.__exit__(type(failure), failure, failure.__traceback__)
                if self.fail_silently:
                    return None
                raise
            self._lease, self._client = lease, client
            return True

    def close(self) -> None:
        """Give the held client back to the pool, connected, for the next user."""
        with self._lock:
            lease, self._lease, self._client = self._lease, None, None
            if lease is not None:
                lease.__exit__(None, None, None)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send the messages (pipelined) and return how many the server accepted."""
        if not email_messages:
            return 0
        outgoing = [_outgoing(message) for message in email_messages if message.recipients()]
        if not outgoing:
            return 0
        with self._lock:
            try:
                results = self._send(outgoing)
            except SmtpError:
                if self.fail_silently:
                    return 0
                raise
        failures = [result.error for result in results if result.error is not None]
        if failures and not self.fail_silently:
            raise failures[0]
        return sum(result.sent for result in results)

    def _send(self, outgoing: list[Outgoing]) -> list[BulkResult]:
        if self._client is not None:
            results = list(self._client.send_many(outgoing))
        else:
            results = list(self.pool.send_many(outgoing, connections=self.connections))
        return sorted(results, key=lambda result: result.index)


def _classic_settings() -> dict[str, Any]:
    """Django's ``EMAIL_*`` settings (only those set explicitly when a mailwire configuration
    file is named, so that the file is not overridden by Django's defaults) and ``MAILWIRE``."""
    extra = dict(getattr(settings, "MAILWIRE", {}) or {})
    uses_file = extra.get("config") is not None or extra.get("profile") is not None
    classic: dict[str, Any] = {}
    for option, name in _CLASSIC_SETTINGS.items():
        if not hasattr(settings, name):
            continue
        if uses_file and not settings.is_overridden(name):
            continue
        classic[option] = getattr(settings, name)
    return _merge(classic, extra)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    return base | {name: value for name, value in over.items() if value is not None}


def _pool_options(options: dict[str, Any], alias: str | None) -> dict[str, Any]:
    """Django's option names turned into mailwire's."""
    use_tls, use_ssl = options.pop("use_tls", False), options.pop("use_ssl", False)
    where = f"mailer {alias!r}" if alias else "EMAIL_USE_TLS/EMAIL_USE_SSL"
    if use_tls and use_ssl:
        raise ConfigError(f"{where}: use_tls and use_ssl exclude each other; set at most one")
    if use_ssl:
        options["security"] = "ssl_implicit"
    elif use_tls:
        options["security"] = "ssl_explicit"
    keyfile, certfile = options.pop("ssl_keyfile", None), options.pop("ssl_certfile", None)
    if certfile:
        options["client_certificate"] = (certfile, keyfile) if keyfile else certfile
    uses_file = options.get("config") is not None or options.get("profile") is not None
    if options.get("port") is None and not uses_file:
        options["port"] = 465 if use_ssl else 587 if use_tls else 25
    if not options.get("username"):
        options.pop("username", None)
        options.pop("password", None)
    if not options.get("timeout"):
        options.pop("timeout", None)
    return options


def _outgoing(message: EmailMessage) -> Outgoing:
    """A Django message as bytes (Bcc is not in them) with its envelope."""
    if _MESSAGE_TAKES_POLICY:
        data = message.message(policy=email.policy.SMTP).as_bytes()
    else:
        data = message.message().as_bytes(linesep="\r\n")
    return Outgoing(data, sender=_address(message.from_email),
                    recipients=[_address(recipient) for recipient in message.recipients()])


def _address(text: object) -> str:
    """The addr-spec of ``"Name <user@example.com>"``; the domain IDNA-encoded when the local
    part is ASCII, so that servers without SMTPUTF8 take it."""
    value = str(text)
    parsed = AddressHeader.value_parser(value)
    mailboxes = parsed.all_mailboxes
    if len(mailboxes) != 1 or not mailboxes[0].addr_spec or any(
            "local part with no domain" not in str(defect) for defect in parsed.all_defects):
        raise SmtpUsageError(f"invalid address {value!r}: expected one mailbox")
    mailbox = mailboxes[0]
    if mailbox.domain and not mailbox.domain.isascii() and mailbox.local_part.isascii():
        try:
            domain = mailbox.domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise SmtpUsageError(f"invalid address {value!r}: bad domain") from None
        return str(Address(username=mailbox.local_part, domain=domain))
    return str(mailbox.addr_spec)
