"""Process-wide pools for the integrations, one per distinct set of options.

Frameworks create a mail backend object per use (Django makes one for every ``send_mail``), so
the connections must live elsewhere: here, in one ``SmtpPool`` per set of options, made on first
use and shared by every thread of the process. A forked child gets pools of its own (see
``mailwire.pool.forks``).

Options are plain values, as settings files give them: ``config`` and ``profile`` (a mailwire
configuration, read once when the pool is made; without ``host`` the configuration is found by
``mailwire.load_settings``' search order), ``host``, ``port``, ``username``, ``password``,
``security``, every other ``SmtpClient`` attribute (``allowed_authentication`` and
``supported_encryption`` may be lists of names, ``bind_endpoint`` a ``[host, port]`` list), and
the pool's own ``max_connections``, ``idle_timeout`` and ``wait_timeout``. Explicit options win
over the configuration file.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from mailwire.client import SmtpClient
from mailwire.config import Settings, apply_settings, load_settings, require_host
from mailwire.config import values as parse
from mailwire.errors import ConfigError, SmtpUsageError
from mailwire.pool import SmtpPool

SOURCE_OPTIONS = frozenset({"config", "profile"})
POOL_OPTIONS = frozenset({"max_connections", "idle_timeout", "wait_timeout"})
CLIENT_OPTIONS = frozenset({
    "host", "port", "username", "password", "security", "timeout", "greeting_timeout",
    "oauth_token", "allowed_authentication", "allow_plaintext_credentials", "local_hostname",
    "proxy", "bind_endpoint", "supported_encryption", "ssl_context", "ca_file", "ca_path",
    "client_certificate", "certificate_validation_callback",
    "dangerously_skip_certificate_verification",
})
OPTIONS = SOURCE_OPTIONS | POOL_OPTIONS | CLIENT_OPTIONS

_pools: dict[str, SmtpPool] = {}
_lock = threading.Lock()


def shared_pool(options: Mapping[str, Any]) -> SmtpPool:
    """The process's pool for ``options``, made on first use."""
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise SmtpUsageError(f"unknown mailwire option(s): {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(OPTIONS))}")
    key = _fingerprint(options)
    with _lock:
        pool = _pools.get(key)
        if pool is not None and not pool.closed:
            return pool
        pool_options = {name: options[name] for name in POOL_OPTIONS if name in options}
        pool = SmtpPool.from_factory(client_factory(options), **pool_options)
        _pools[key] = pool
        return pool


def close_shared_pools() -> None:
    """QUIT every connection of every shared pool (a worker shutting down, a test ending)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def client_factory(options: Mapping[str, Any]) -> Callable[[], SmtpClient]:
    """Clients from the configuration named by ``config``/``profile`` (if any), then the
    explicit client options; the configuration is read once, now."""
    explicit = {name: _typed(name, value) for name, value in options.items()
                if name in CLIENT_OPTIONS and value is not None}
    settings: Settings | None = None
    named = options.get("config") is not None or options.get("profile") is not None
    if named or not explicit.get("host"):
        settings = load_settings(options.get("config"), options.get("profile"))
    host = explicit.get("host") or (require_host(settings) if settings else None)
    if not host:
        raise ConfigError("no SMTP host: give host, or a configuration that has one")

    def make() -> SmtpClient:
        client = SmtpClient(host)
        if settings is not None:
            apply_settings(settings, client)
        for name, value in explicit.items():
            setattr(client, name, value)
        return client

    make()
    return make


def _typed(name: str, value: Any) -> Any:
    """A settings-file value as the client attribute wants it."""
    try:
        if name == "allowed_authentication" and isinstance(value, list | tuple | str):
            return parse.mechanisms(list(value) if not isinstance(value, str) else value)
        if name == "supported_encryption" and isinstance(value, list | tuple | str):
            return parse.tls_versions(list(value) if not isinstance(value, str) else value)
    except ValueError as error:
        raise SmtpUsageError(f"mailwire option {name}: {error}") from None
    if name in ("bind_endpoint", "client_certificate") and isinstance(value, list):
        return tuple(value)
    return value


def _fingerprint(options: Mapping[str, Any]) -> str:
    """A key for ``options`` that keeps no secret readable (only a digest of them)."""
    text = repr(sorted((name, repr(value)) for name, value in options.items()))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _reset_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)
