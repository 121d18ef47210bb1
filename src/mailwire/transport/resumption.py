"""TLS session resumption: the session of one connection to a server is offered on the next.

A resumed handshake skips the certificate exchange and its verification (and, with TLS 1.2, a
round trip). Sessions are kept per TLS context (so per set of TLS settings) and per server
(host and port), for the contexts mailwire builds; a context the caller supplies is used as it
is. The blocking transport passes the session to ``wrap_socket``; asyncio's ``start_tls`` takes
none, so for it the context creates its ``SSLObject`` through ``ResumingObject``, which picks up
the session offered for the handshake under way (``offering``).

A server that does not resume simply does a full handshake: nothing else changes.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import threading
import weakref
from collections.abc import Iterator
from typing import Any

Server = tuple[str, int]

_sessions: weakref.WeakKeyDictionary[ssl.SSLContext, dict[Server, ssl.SSLSession]] = (
    weakref.WeakKeyDictionary())
_lock = threading.Lock()
_offered: contextvars.ContextVar[ssl.SSLSession | None] = contextvars.ContextVar(
    "mailwire_tls_session", default=None)
_RESUMING = "_mailwire_resumes"


def enable(context: ssl.SSLContext) -> ssl.SSLContext:
    """Let ``context`` (one mailwire built) resume sessions on asyncio connections too."""
    if context.sslobject_class is ssl.SSLObject:
        context.sslobject_class = ResumingObject
    setattr(context, _RESUMING, True)
    return context


def recall(context: ssl.SSLContext, server: Server) -> ssl.SSLSession | None:
    """The session to offer to ``server``, or None."""
    if not getattr(context, _RESUMING, False):
        return None
    with _lock:
        return _sessions.get(context, {}).get(server)


def remember(context: ssl.SSLContext, server: Server, session: ssl.SSLSession | None) -> None:
    """Keep ``session`` (from a connection to ``server`` with ``context``) for the next one."""
    if session is None or not getattr(context, _RESUMING, False):
        return
    if not session.has_ticket and not session.id:
        return
    with _lock:
        _sessions.setdefault(context, {})[server] = session


@contextlib.contextmanager
def offering(session: ssl.SSLSession | None) -> Iterator[None]:
    """Offer ``session`` in the TLS handshakes started in this context (asyncio's callbacks
    run in a copy of the context they were scheduled from)."""
    token = _offered.set(session)
    try:
        yield
    finally:
        _offered.reset(token)


class ResumingObject(ssl.SSLObject):
    """An ``SSLObject`` that takes the session offered for the handshake under way."""

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("session") is None:
            kwargs["session"] = _offered.get()
        return super()._create(*args, **kwargs)  # type: ignore[misc]
