"""Turning one raw setting (a TOML value, an environment string, an XML attribute) into its type.

Every parser takes the raw value and returns the typed one, or raises ``ValueError`` whose text
says what was expected and what was found (never the value of a secret). The same parsers check
the command line's options, so a bad port reads the same wherever it was written.
"""

from __future__ import annotations

import difflib
import os
import shlex
from collections.abc import Iterable
from pathlib import Path

from mailwire.auth import SmtpKnownAuthenticationType
from mailwire.dsn import DeliveryNotificationOptions
from mailwire.errors import SmtpUsageError
from mailwire.pickup import SmtpDeliveryMethod
from mailwire.security import SecurityOptions
from mailwire.transport.proxy import parse_proxy, redact_url
from mailwire.transport.tls import EncryptionProtocols

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_TLS_VERSIONS = {
    "10": EncryptionProtocols.TLS10,
    "11": EncryptionProtocols.TLS11,
    "12": EncryptionProtocols.TLS12,
    "13": EncryptionProtocols.TLS13,
}


def suggest(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``name`` looks like a misspelling of a known name."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_kind(value)}")
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise ValueError("control characters (CR, LF, NUL, ...) are not allowed")
    return value


def secret(value: object) -> str:
    """A password or token: any string; the error never shows the value."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def port(value: object) -> int:
    number: object = value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
        raise ValueError(f"expected a port number 1-65535, got {_shown(value)}")
    return number


def seconds(value: object) -> float:
    number: object = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {_shown(value)}") from None
    if isinstance(number, bool) or not isinstance(number, int | float) or not number > 0:
        raise ValueError(f"expected a positive number of seconds, got {_shown(value)}")
    if number != number or number == float("inf"):
        raise ValueError(f"expected a finite number of seconds, got {_shown(value)}")
    return float(number)


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {_shown(value)}")


def security(value: object) -> SecurityOptions:
    try:
        return SecurityOptions.parse(text(value))
    except ValueError as error:
        known = [mode.value for mode in SecurityOptions] + ["starttls", "tls", "ssl", "plain"]
        hint = suggest(str(value).strip().lower().replace("-", "_"), known)
        raise ValueError(f"{error}{hint}") from None


def proxy_url(value: object) -> str:
    url = text(value).strip()
    try:
        parse_proxy(url)
    except SmtpUsageError as error:
        raise ValueError(str(error)) from None
    return url


def bind_address(value: object) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; port 0 (any) when none is given."""
    raw = text(value).strip()
    host, port_text = raw, ""
    if raw.startswith("["):
        closing = raw.find("]")
        if closing < 0:
            raise ValueError(f"expected host[:port] or [IPv6][:port], got {raw!r}")
        host, rest = raw[1:closing], raw[closing + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"expected host[:port] or [IPv6][:port], got {raw!r}")
        port_text = rest[1:]
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    if not host:
        raise ValueError(f"expected host[:port] or [IPv6][:port], got {raw!r}")
    if not port_text:
        return host, 0
    if port_text == "0":
        return host, 0
    return host, port(port_text)


def tls_versions(value: object) -> EncryptionProtocols:
    """A list (or comma-separated string) of ``TLS12``, ``TLSv1.3``, ``1.2``, ... names."""
    versions = EncryptionProtocols.NONE
    for name in _names(value):
        key = name.lower().replace("tlsv", "").replace("tls", "").replace(".", "").replace("_", "")
        if key not in _TLS_VERSIONS:
            raise ValueError(f"unknown TLS version {name!r} (expected TLS10, TLS11, TLS12 "
                             "or TLS13)")
        versions |= _TLS_VERSIONS[key]
    if not versions:
        raise ValueError("expected at least one TLS version")
    return versions


def mechanisms(value: object) -> SmtpKnownAuthenticationType:
    """A list (or comma-separated string) of SASL names: ``PLAIN``, ``SCRAM-SHA-256``, ..."""
    known = {flag.mechanism_name: flag for flag in SmtpKnownAuthenticationType
             if flag and flag is not SmtpKnownAuthenticationType.ALL}
    allowed = SmtpKnownAuthenticationType.NONE
    for name in _names(value):
        key = name.upper().replace("_", "-")
        if key not in known:
            raise ValueError(f"unknown authentication mechanism {name!r}"
                             f"{suggest(key, known)}; known: {', '.join(known)}")
        allowed |= known[key]
    if not allowed:
        raise ValueError("expected at least one authentication mechanism")
    return allowed


def notify(value: object) -> DeliveryNotificationOptions:
    """Delivery status notifications: ``success``, ``failure``, ``delay`` (a list or
    comma-separated), or ``never``."""
    try:
        return DeliveryNotificationOptions.parse(", ".join(_names(value)))
    except SmtpUsageError as error:
        raise ValueError(str(error)) from None


def dsn_return(value: object) -> str:
    """What a failure report carries: ``full`` or ``headers``."""
    text = str(value).strip().lower()
    if text not in ("full", "headers"):
        raise ValueError(f"expected full or headers, not {_shown(value)}")
    return text


def delivery_method(value: object) -> SmtpDeliveryMethod:
    """``network`` or ``specified_pickup_directory``."""
    try:
        return SmtpDeliveryMethod.parse(str(value))
    except SmtpUsageError as error:
        raise ValueError(str(error)) from None


def command(value: object) -> tuple[str, ...]:
    """A command as a list of arguments, or a string split like a POSIX shell would."""
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        parts: list[str] = list(value)
    elif isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as error:
            raise ValueError(f"cannot split the command: {error}") from None
    else:
        raise ValueError(f"expected a command (a string or a list of strings), got "
                         f"{_kind(value)}")
    if not parts or not parts[0]:
        raise ValueError("the command is empty")
    return tuple(parts)


def file_path(value: object, base: Path) -> str:
    path = _path(value, base)
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path}")
    return path


def directory_path(value: object, base: Path) -> str:
    path = _path(value, base)
    if not os.path.isdir(path):
        raise ValueError(f"no such directory: {path}")
    return path


def _path(value: object, base: Path) -> str:
    path = Path(text(value)).expanduser()
    return str(path if path.is_absolute() else base / path)


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return [part.strip() for part in value if part.strip()]
    raise ValueError(f"expected a list of names, got {_kind(value)}")


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(redact_url(value) if "@" in value else value)
    return _kind(value) if isinstance(value, list | dict) else repr(value)


def _kind(value: object) -> str:
    names = {dict: "a table", list: "a list", bool: "a boolean", int: "an integer",
             float: "a number", str: "a string"}
    return names.get(type(value), type(value).__name__)
