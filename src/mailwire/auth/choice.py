"""Choosing the mechanism: what the server offers, the caller allows and the credentials fit,
first in the ``preference`` table.

``allowed_authentication`` is either ``SmtpKnownAuthenticationType`` flags (Aspose's API; ``ALL``
also allows every registered mechanism that has no flag) or a collection of SASL names (flags
may be mixed in), for mechanisms that have no flag. A string is one name or a comma-separated
list.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TypeAlias

from mailwire.auth.credentials import Credentials
from mailwire.auth.flags import SmtpKnownAuthenticationType
from mailwire.auth.mechanism import AuthContext, Mechanism, registered
from mailwire.auth.preference import rank
from mailwire.errors import AuthenticationError, SmtpUsageError

AllowedAuthentication: TypeAlias = (
    SmtpKnownAuthenticationType | str | Collection[str | SmtpKnownAuthenticationType])
_FLAGS = {flag.mechanism_name: flag for flag in SmtpKnownAuthenticationType}


def allowed_names(allowed: AllowedAuthentication) -> frozenset[str]:
    """The SASL names ``allowed`` permits."""
    if isinstance(allowed, SmtpKnownAuthenticationType):
        names = set(allowed.mechanism_names)
        if allowed == SmtpKnownAuthenticationType.ALL:
            names |= {name for name, mechanism in registered().items()
                      if not mechanism.flag}
        return frozenset(names)
    items: Collection[str | SmtpKnownAuthenticationType] = (
        [part for part in re.split(r"[\s,]+", allowed) if part]
        if isinstance(allowed, str) else allowed)
    names = set()
    for item in items:
        if isinstance(item, SmtpKnownAuthenticationType):
            names |= allowed_names(item)
        elif isinstance(item, str):
            names.add(item.strip().upper().replace("_", "-"))
        else:
            raise SmtpUsageError(
                "allowed_authentication holds SmtpKnownAuthenticationType flags or SASL "
                f"mechanism names, not {type(item).__name__}")
    return frozenset(names)


def choose(offered: tuple[str, ...], allowed: AllowedAuthentication, credentials: Credentials,
           context: AuthContext | None = None) -> type[Mechanism]:
    """The preferred mechanism the server offers, the caller allows and the credentials fit."""
    context = context if context is not None else AuthContext(offered=offered)
    permitted = allowed_names(allowed)
    fitting = [
        mechanism
        for name, mechanism in registered().items()
        if name in offered and name in permitted and mechanism.usable_with(credentials)
        and mechanism.usable_on(context)
    ]
    candidates = [mechanism for mechanism in fitting if mechanism.unavailable() is None]
    if fitting and not candidates:
        raise SmtpUsageError("; ".join(f"the server offers {mechanism.name()}, which "
                                       f"{mechanism.unavailable()}" for mechanism in fitting))
    if not candidates:
        secret = ("an OAuth token" if credentials.has_token else
                  "a password" if credentials.password is not None else "no password or token")
        where = f" at {_address(context)}" if context.host else ""
        raise AuthenticationError(
            f"no common authentication mechanism{where}: the server offers "
            f"{list(offered) or 'none'}, allowed are {describe(permitted)} with {secret}"
        )
    return min(candidates, key=lambda mechanism: rank(mechanism.name()))


def _address(context: AuthContext) -> str:
    host = context.host.strip("[]")
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{context.port}"


def describe(names: frozenset[str]) -> list[str]:
    return sorted(names, key=rank)


def supported_flags(offered: tuple[str, ...]) -> SmtpKnownAuthenticationType:
    """The flags of the offered mechanisms that mailwire implements."""
    implemented = registered()
    flags = SmtpKnownAuthenticationType.NONE
    for name in offered:
        if name in implemented and name in _FLAGS:
            flags |= _FLAGS[name]
    return flags


def implemented(offered: tuple[str, ...]) -> tuple[str, ...]:
    """The offered mechanisms that are registered (built-in or plug-in), preferred first."""
    known = registered()
    return tuple(sorted((name for name in offered if name in known), key=rank))
