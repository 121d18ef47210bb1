"""Proxy descriptions (SOCKS 4, 4a, 5 and HTTP CONNECT), parsed from objects or URLs.

The handshakes themselves are python-socks' work; this module says which proxy to use, checks
what would go into a handshake, turns failures into mailwire errors that say what failed, and
keeps credentials out of every repr and message. The blocking and the asyncio transports share
it: everything here is pure, except ``HttpReplySocket``, which reads only when a transport
(or python-socks for it) calls its ``recv``.

How each proxy kind reports failures (what ``ProxyError.proxy_code`` can hold):

- SOCKS5: the reply code of RFC 1928 (2 = not allowed by ruleset, 4 = host unreachable,
  5 = connection refused, ...); refused credentials raise ``ProxyAuthenticationError``
  (RFC 1929 gives no code).
- SOCKS4 and 4a: 91 (0x5B, rejected or failed) for every refusal, with no reason; 92 and 93
  are identd failures, reported as ``ProxyAuthenticationError``.
- HTTP CONNECT: the HTTP status (403 refused, 407 or 401 credentials, 502/503/504 cannot
  reach the server, ...).
- A proxy that closes the connection without a reply (OpenSSH's ``ssh -D`` does so when it
  cannot reach the target) gives a ``ProxyError`` with no code.
"""

from __future__ import annotations

import ipaddress
import re
import socket
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
from mailwire.transport.deadline import DeadlineSocket

PROXY_PHASE = "proxy handshake"
HTTP_REPLY_END = b"\r\n\r\n"
"""The end of an HTTP CONNECT reply's header: the server's bytes start right after it."""
MAX_HTTP_REPLY = 16 * 1024
"""The longest HTTP CONNECT reply header read before giving up on finding its end."""

_SOCKS_FIELD_LIMIT = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_AUTHENTICATION_CODES = frozenset({92, 93, 401, 407})


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

    def __post_init__(self) -> None:
        _check_address(self.host, self.port, "SOCKS proxy")
        if self.version is SocksVersion.SOCKS5:
            for value, what in ((self.username, "user name"), (self.password, "password")):
                if value is not None and not (value.isascii() and len(value) <= _SOCKS_FIELD_LIMIT
                                              and not _CONTROL.search(value)):
                    raise SmtpUsageError(f"the SOCKS5 {what} must be at most "
                                         f"{_SOCKS_FIELD_LIMIT} ASCII characters without "
                                         "control characters")
        elif self.username is not None and not (self.username.isascii()
                                                and not _CONTROL.search(self.username)):
            raise SmtpUsageError("the SOCKS4 user id must be ASCII without control characters")

    @property
    def resolves_remotely(self) -> bool:
        if self.version is SocksVersion.SOCKS4:
            return False
        return True if self.remote_dns is None else self.remote_dns

    def describe(self) -> str:
        return f"{self.version.name} proxy {format_address(self.host, self.port)}"


@dataclass(frozen=True, slots=True)
class HttpProxy:
    """An HTTP proxy reached with CONNECT, with optional Basic credentials."""

    host: str
    port: int = 8080
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_address(self.host, self.port, "HTTP proxy")
        for value, what in ((self.username, "user name"), (self.password, "password")):
            if value is None:
                continue
            if _CONTROL.search(value) or not _latin1(value):
                raise SmtpUsageError(f"the HTTP proxy {what} must be Latin-1 text without "
                                     "control characters")
        if self.username is not None and ":" in self.username:
            raise SmtpUsageError("the HTTP proxy user name may not contain ':' (Basic auth)")

    def describe(self) -> str:
        return f"HTTP proxy {format_address(self.host, self.port)}"


Proxy: TypeAlias = SocksProxy | HttpProxy

_SCHEMES = {
    "socks4": (SocksVersion.SOCKS4, False),
    "socks4a": (SocksVersion.SOCKS4A, True),
    "socks5": (SocksVersion.SOCKS5, False),
    "socks5h": (SocksVersion.SOCKS5, True),
}


def parse_proxy(value: Proxy | str) -> Proxy:
    """A proxy from an object or a URL (``socks5://user:pass@host:1080``, ``http://host:3128``).

    As with curl, ``socks5://`` resolves names locally and ``socks5h://`` at the proxy. A URL
    must parse exactly: a path, query or fragment after ``host:port`` is refused, since an
    unescaped ``/``, ``?`` or ``#`` in a password would otherwise cut it short and leave a
    wrong host and port; such characters are written percent-encoded.
    """
    if isinstance(value, SocksProxy | HttpProxy):
        return value
    if not isinstance(value, str):
        raise SmtpUsageError(f"a proxy is a SocksProxy, an HttpProxy or a URL, not "
                             f"{type(value).__name__}")
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        hostname, port = None, -1
    scheme = parts.scheme.lower() if hostname else ""
    if not hostname or port == -1 or (scheme not in _SCHEMES and scheme != "http"):
        raise SmtpUsageError(f"not a proxy URL: {redact_url(value)!r} (expected "
                             "socks4://, socks4a://, socks5://, socks5h:// or http://host:port)")
    if text[len(parts.scheme) + 3:] not in (parts.netloc, parts.netloc + "/") or (
            parts.netloc.count("@") > 1 or _CONTROL.search(text) or " " in text):
        raise SmtpUsageError(f"not a proxy URL: {redact_url(value)!r}: nothing may follow "
                             "host:port, and a '/', '?', '#', '@', space or control character "
                             "in the user name or password must be percent-encoded (%2F, %3F, "
                             "%23, %40, %20, ...)")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if scheme == "http":
        return HttpProxy(hostname, port or 8080, username, password)
    version, remote = _SCHEMES[scheme]
    return SocksProxy(hostname, port or 1080, version, username, password, remote)


def redact_url(url: str) -> str:
    """``url`` with anything that may be ``user:password@`` replaced by ``***@``.

    Works on malformed URLs too (an unescaped ``/``, ``#`` or ``?`` in a password, no scheme):
    everything before the last ``@`` of the text goes.
    """
    if "@" not in url:
        return url
    scheme, separator, _rest = url.partition("://")
    host = url.rsplit("@", 1)[1]
    return f"{scheme}://***@{host}" if separator else f"***@{host}"


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_target(host: str, proxy: Proxy | None = None) -> None:
    """Refuse a server name that would change the meaning of a proxy request.

    The name goes as text into the HTTP ``CONNECT`` line and the SOCKS4a/SOCKS5 requests, so
    a CR, LF, NUL, other control character or space in it could inject a header or end the
    request early. SOCKS4 and 4a carry IPv4 addresses only.
    """
    if not host or _CONTROL.search(host) or " " in host:
        raise SmtpUsageError(f"the server name {host!r} cannot be sent to a proxy")
    if isinstance(proxy, SocksProxy) and proxy.version is not SocksVersion.SOCKS5:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        if address.version == 6:
            raise SmtpUsageError(f"a {proxy.version.name} proxy cannot reach the IPv6 address "
                                 f"{host}; use SOCKS5 or HTTP")


def python_socks_arguments(proxy: Proxy) -> dict[str, Any]:
    """Keyword arguments for python-socks' ``Proxy`` constructors."""
    if isinstance(proxy, HttpProxy):
        kind, remote = ProxyType.HTTP, True
    else:
        kind = ProxyType.SOCKS5 if proxy.version is SocksVersion.SOCKS5 else ProxyType.SOCKS4
        remote = proxy.resolves_remotely
    return {"proxy_type": kind, "host": proxy.host, "port": proxy.port,
            "username": proxy.username, "password": proxy.password, "rdns": remote}


def reads_reply_to_blank_line(proxy: Proxy) -> bool:
    """Whether a transport must stop python-socks from reading past the proxy's reply.

    python-socks reads an HTTP CONNECT reply with a single receive of up to 64 KiB; an SMTP
    server speaks first, so its greeting may arrive in the same receive and be thrown away,
    and a reply that arrives in pieces leaves its last header lines for the SMTP parser.
    The blocking transport hands python-socks an ``HttpReplySocket``, whose reads end at
    ``HTTP_REPLY_END``; the asyncio one a loop whose ``sock_recv`` does the same (a socket's
    ``recv`` is bypassed by the proactor loop). SOCKS replies have fixed sizes and are read
    exactly.
    """
    return isinstance(proxy, HttpProxy)


def http_reply_complete(received: bytes | bytearray) -> bool:
    """Whether ``received`` holds a whole HTTP CONNECT reply header; a ``ProxyError`` when it
    grew past ``MAX_HTTP_REPLY`` without ending."""
    if received.endswith(HTTP_REPLY_END):
        return True
    if len(received) >= MAX_HTTP_REPLY:
        raise OverlongHttpReply
    return False


class OverlongHttpReply(Exception):
    """The HTTP proxy's reply header went on past ``MAX_HTTP_REPLY`` bytes."""


class HttpReplySocket(DeadlineSocket):
    """A socket whose reads stop at the blank line that closes an HTTP CONNECT reply.

    For the proxy handshake only (see ``reads_reply_to_blank_line``): ``recv`` returns the
    whole reply header at once and never a byte of what follows. It reads a byte at a time
    (a few dozen system calls, once) and keeps what it has between calls, so it works on a
    blocking socket and on a non-blocking one driven by asyncio's ``sock_recv`` (which calls
    ``recv`` again after ``BlockingIOError``). Make one with ``HttpReplySocket.adopt(sock,
    seconds)`` and turn it back into a plain socket with ``release()`` once the handshake is
    over; as a ``DeadlineSocket`` its reads end within ``seconds`` as a whole.
    """

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1,
                 fileno: int | None = None) -> None:
        super().__init__(family, type, proto, fileno)
        self._pending = bytearray()

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        pending = self._pending
        while not http_reply_complete(pending):
            byte = super().recv(1, flags)  # BlockingIOError keeps ``pending`` for next time
            if not byte:
                break
            pending += byte
        reply = bytes(pending)
        pending.clear()
        return reply


def proxy_unreachable(error: BaseException, proxy: Proxy, timeout: float) -> SmtpError:
    """The mailwire error for a failed TCP connection to the proxy itself."""
    where = proxy.describe()
    if isinstance(error, SmtpError):
        return error
    if isinstance(error, OverlongHttpReply) or isinstance(error.__cause__, OverlongHttpReply):
        return ProxyError(f"the {where} sent a reply header longer than {MAX_HTTP_REPLY} "
                          "bytes")
    if isinstance(error, TimeoutError):
        return SmtpTimeoutError(f"connect to the {where}", timeout)
    if isinstance(error, socket.gaierror):
        return ProxyError(f"cannot reach the {where}: cannot resolve {proxy.host!r} "
                          f"({error.strerror})")
    if isinstance(error, OSError):
        return ProxyError(f"cannot reach the {where}: {_os_reason(error)}")
    return ProxyError(f"cannot reach the {where}: {error}")


def translate_proxy_error(error: BaseException, proxy: Proxy, target: str,
                          timeout: float) -> SmtpError:
    """The mailwire error for a failure of the proxy handshake (python-socks or the OS)."""
    from python_socks import ProxyConnectionError, ProxyTimeoutError
    from python_socks import ProxyError as SocksLibraryError

    where = proxy.describe()
    if isinstance(error, SmtpError):
        return error
    if isinstance(error, ProxyTimeoutError | TimeoutError):
        return SmtpTimeoutError(f"{PROXY_PHASE} with the {where}", timeout)
    if isinstance(error, ProxyConnectionError):
        cause = error.__cause__
        return proxy_unreachable(cause if isinstance(cause, OSError) else error, proxy, timeout)
    if isinstance(error, SocksLibraryError):
        code = None if error.error_code is None else int(error.error_code)
        text = str(error)
        if code in _AUTHENTICATION_CODES or "authentication" in text.lower():
            return ProxyAuthenticationError(f"the {where} refused the credentials: {text}",
                                            proxy_code=code)
        if code is None and "closed unexpectedly" in text.lower():
            return ProxyError(f"the {where} closed the connection without a reply while "
                              f"reaching {target} (it may not be able to reach it)")
        if code is None:
            return ProxyError(f"the {where} gave a bad reply while reaching {target}: {text}")
        return ProxyError(f"the {where} could not reach {target}: {text} (proxy code {code})",
                          proxy_code=code)
    if isinstance(error, socket.gaierror):
        return ProxyError(f"cannot resolve {target} for the {where}, which needs an IPv4 "
                          f"address: {error.strerror}")
    if isinstance(error, ConnectionError):
        return ProxyError(f"the {where} dropped the connection while reaching {target}: "
                          f"{_os_reason(error)}")
    if isinstance(error, OSError):
        return ProxyError(f"the {where} failed while reaching {target}: {_os_reason(error)}")
    return ProxyError(f"the {where} failed while reaching {target}: {type(error).__name__}")


def _os_reason(error: OSError) -> str:
    return (error.strerror or str(error) or type(error).__name__).lower()


def _check_address(host: object, port: object, kind: str) -> None:
    if not isinstance(host, str) or not host or _CONTROL.search(host) or " " in host:
        raise SmtpUsageError(f"bad {kind} host {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise SmtpUsageError(f"bad {kind} port {port!r}")


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
