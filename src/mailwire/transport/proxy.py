"""Proxy descriptions (SOCKS 4, 4a, 5 and HTTP CONNECT), parsed from objects or URLs.

The handshakes themselves are python-socks' work; this module says which proxy to use, turns
python-socks' failures into mailwire errors that say what failed, and keeps credentials out of
every repr and message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

from python_socks import ProxyType

from mailwire.errors import (
    ProxyAuthenticationError,
    ProxyError,
    SmtpError,
    SmtpTimeoutError,
    SmtpUsageError,
)

PROXY_PHASE = "proxy handshake"


class SocksVersion(Enum):
    SOCKS4 = "socks4"
    SOCKS4A = "socks4a"
    SOCKS5 = "socks5"


@dataclass(frozen=True, slots=True)
class SocksProxy:
    """A SOCKS proxy. SOCKS4 resolves names locally (``username`` is the SOCKS4 user id);
    SOCKS4A and SOCKS5 let the proxy resolve them unless ``remote_dns=False``."""

    host: str
    port: int = 1080
    version: SocksVersion = SocksVersion.SOCKS5
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    remote_dns: bool | None = None

    @property
    def resolves_remotely(self) -> bool:
        if self.version is SocksVersion.SOCKS4:
            return False
        return True if self.remote_dns is None else self.remote_dns

    def describe(self) -> str:
        return f"{self.version.name} proxy {self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class HttpProxy:
    """An HTTP proxy reached with CONNECT, with optional Basic credentials."""

    host: str
    port: int = 8080
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        return f"HTTP proxy {self.host}:{self.port}"


Proxy: TypeAlias = SocksProxy | HttpProxy

_SCHEMES = {
    "socks4": (SocksVersion.SOCKS4, False),
    "socks4a": (SocksVersion.SOCKS4A, True),
    "socks5": (SocksVersion.SOCKS5, False),
    "socks5h": (SocksVersion.SOCKS5, True),
}


def parse_proxy(value: Proxy | str) -> Proxy:
    """A proxy from an object or a URL (``socks5://user:pass@host:1080``, ``http://host:3128``).

    As with curl, ``socks5://`` resolves names locally and ``socks5h://`` at the proxy.
    """
    if isinstance(value, SocksProxy | HttpProxy):
        return value
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if not parts.hostname or port == -1 or (scheme not in _SCHEMES and scheme != "http"):
        raise SmtpUsageError(f"not a proxy URL: {redact_url(value)!r} (expected "
                             "socks4://, socks4a://, socks5://, socks5h:// or http://host:port)")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if scheme == "http":
        return HttpProxy(parts.hostname, port or 8080, username, password)
    version, remote = _SCHEMES[scheme]
    return SocksProxy(parts.hostname, port or 1080, version, username, password, remote)


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` part replaced."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"***@{host}").geturl()


def python_socks_arguments(proxy: Proxy) -> dict[str, Any]:
    """Keyword arguments for python-socks' ``Proxy`` constructors."""
    if isinstance(proxy, HttpProxy):
        kind, remote = ProxyType.HTTP, True
    else:
        kind = ProxyType.SOCKS5 if proxy.version is SocksVersion.SOCKS5 else ProxyType.SOCKS4
        remote = proxy.resolves_remotely
    return {"proxy_type": kind, "host": proxy.host, "port": proxy.port,
            "username": proxy.username, "password": proxy.password, "rdns": remote}


def translate_proxy_error(error: BaseException, proxy: Proxy, target: str,
                          timeout: float) -> SmtpError:
    """The mailwire error for a python-socks failure while reaching ``target``."""
    from python_socks import ProxyConnectionError, ProxyTimeoutError
    from python_socks import ProxyError as SocksLibraryError

    where = proxy.describe()
    if isinstance(error, ProxyTimeoutError | TimeoutError):
        return SmtpTimeoutError(f"{PROXY_PHASE} with the {where}", timeout)
    if isinstance(error, ProxyConnectionError):
        reason = getattr(error, "strerror", None) or error
        return ProxyError(f"cannot reach the {where}: {reason}")
    if isinstance(error, SocksLibraryError):
        code = error.error_code
        text = str(error)
        if code in (401, 407) or "authentication" in text.lower():
            return ProxyAuthenticationError(f"the {where} refused the credentials: {text}",
                                            proxy_code=code)
        return ProxyError(f"the {where} could not reach {target}: {text}", proxy_code=code)
    if isinstance(error, OSError):
        return ProxyError(f"the {where} failed while reaching {target}: "
                          f"{error.strerror or error}")
    return ProxyError(f"the {where} failed while reaching {target}: {error}")
