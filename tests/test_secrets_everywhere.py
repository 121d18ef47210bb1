"""No secret anywhere a client shows things: logs at every level, reprs, exceptions, connection
info (SECURITY.md item 5), on both clients.

Secrets: passwords (PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1/256/512, SCRAM-SHA-256-PLUS), OAuth
tokens (XOAUTH2, OAUTHBEARER),
every AUTH payload in base64 (the initial response and each continuation line), and proxy
credentials (SOCKS5 and HTTP, given as objects or in a ``user:pass@`` URL), with the right and
the wrong secret. What is searched: every log record that reaches a handler on the ``mailwire``
logger or on the root logger set to each level from DEBUG to CRITICAL (formatted with its
traceback), ``repr(client)``, ``repr(client.proxy)``, ``connection_info``, and the ``str``, the
``repr`` and the formatted traceback (with causes) of every exception raised. Records of the
test servers themselves (aiosmtpd's ``mail.log``) are not the client's and are left out.

So that these tests cannot pass vacuously, the DEBUG runs also check that the protocol trace
did cover the exchange (``C: AUTH <mechanism>`` and the server's verdict are there).
"""

from __future__ import annotations

import base64
import logging
import re
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from mailwire import (
    AuthenticationError,
    HttpProxy,
    ProxyAuthenticationError,
    ProxyError,
    SecurityOptions,
    SmtpError,
    SmtpKnownAuthenticationType,
    SmtpUsageError,
    SocksProxy,
    SocksVersion,
)
from mailwire.devserver import Certificates, DevServer, TlsMode
from tests.support.clients import Client, ClientFactory
from tests.support.proxies import RunningProxy, free_port

USER = "alice@example.com"
PASSWORD = "Pa55-right-Tr0ub4dor"
WRONG_PASSWORD = "Pa55-wrong-Tr0ub4dor"
TOKEN = "ya29.right-oauth-bearer-token"
WRONG_TOKEN = "ya29.wrong-oauth-bearer-token"
MECHANISMS = ["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512",
              "SCRAM-SHA-256-PLUS", "XOAUTH2", "OAUTHBEARER"]
TOKEN_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
MESSAGE = b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: s\r\n\r\nbody\r\n"
SERVER_LOGGERS = ("mail.log",)  # aiosmtpd: the test server's log, not the client's

# A client line of the protocol trace during AUTH may only look like one of these.
REDACTED_AUTH_LINE = re.compile(r"C: (AUTH [A-Z0-9-]+( <redacted>)?|<redacted>|\*)")
ORDINARY_COMMANDS = ("EHLO ", "HELO ", "STARTTLS", "MAIL FROM:", "RCPT TO:", "DATA", "QUIT",
                     "RSET", "NOOP", "BDAT ", "<message data>")


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def forbidden(secret: str, user: str = USER) -> list[str]:
    """Every form in which ``secret`` (with ``user``) could show."""
    return [
        secret,
        b64(secret),
        b64(f"\0{user}\0{secret}"),  # PLAIN, no authorization identity
        b64(f"{user}\0{user}\0{secret}"),  # PLAIN with one
        b64(f"user={user}\x01auth=Bearer {secret}\x01\x01"),  # XOAUTH2
        b64(user),  # the LOGIN continuation line holding the user name
        b64(f"{user}:{secret}"),  # HTTP Basic
        secret.encode().hex(),
        repr(secret.encode()),
    ]


class Collected(logging.Handler):
    """Every record that reaches it, formatted with its exception, as one text."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(SERVER_LOGGERS):
            return
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(params=[(logger, level) for logger in ("mailwire", "") for level in LEVELS],
                ids=lambda param: f"{param[0] or 'root'}-{param[1]}")
def logs(request: pytest.FixtureRequest) -> Iterator[Collected]:
    """A handler on the ``mailwire`` logger or on the root logger, set to one level."""
    name, level = request.param
    target = logging.getLogger(name)
    handler = Collected()
    saved = target.level
    target.setLevel(level)
    target.addHandler(handler)
    try:
        yield handler
    finally:
        target.removeHandler(handler)
        target.setLevel(saved)


@pytest.fixture
def debug_logs() -> Iterator[Collected]:
    """Everything, on the root logger at DEBUG."""
    root = logging.getLogger()
    handler = Collected()
    saved = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)


def exception_text(error: BaseException) -> str:
    """``str``, ``repr``, the formatted traceback (with its causes and contexts), and the reply
    text of an mailwire error."""
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, SmtpError):
        parts += [str(error.text), repr(error.reply)]
    for argument in error.args:
        parts.append(repr(argument))
    return "\n".join(parts)


def described(client: Client) -> list[str]:
    """``repr`` and ``str`` of the real client (not of the test's blocking wrapper)."""
    inner = client.inner  # type: ignore[attr-defined]
    assert type(inner).__name__ in ("SmtpClient", "AsyncSmtpClient")
    return [repr(inner), str(inner), repr(inner.proxy), str(inner.proxy)]


def assert_hidden(shown: str, secrets: list[str]) -> None:
    for secret in secrets:
        for form in forbidden(secret):
            assert form not in shown, f"{form!r} (a form of a secret) was shown"


def assert_auth_trace_redacted(text: str) -> None:
    """Every client line of the trace is an ordinary command or a redacted AUTH line."""
    for line in re.findall(r"C: [^\n]*", text):
        if line[3:].startswith(ORDINARY_COMMANDS):
            continue
        assert REDACTED_AUTH_LINE.fullmatch(line), f"unredacted client line: {line!r}"


# -- authentication ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(certificates: Certificates) -> Iterator[DevServer]:
    with DevServer(tls=TlsMode.IMPLICIT, certificates=certificates,
                   credentials={USER: PASSWORD}, tokens={USER: TOKEN}) as running:
        yield running


def auth_client(make_client: ClientFactory, server: DevServer, certificates: Certificates,
                mechanism: str, secret: str) -> Client:
    allowed = SmtpKnownAuthenticationType[mechanism.replace("-", "_")]
    secrets: dict[str, Any] = ({"oauth_token": secret} if mechanism in TOKEN_MECHANISMS
                               else {"password": secret})
    return make_client("localhost", server.port, USER, security=SecurityOptions.SSL_IMPLICIT,
                       timeout=5.0, ssl_context=certificates.client_context(),
                       allowed_authentication=allowed, **secrets)


def run_auth(make_client: ClientFactory, server: DevServer, certificates: Certificates,
             mechanism: str, right: bool) -> list[str]:
    """Send with the right secret, or fail with the wrong one; what the client showed."""
    secret = (TOKEN if right else WRONG_TOKEN) if mechanism in TOKEN_MECHANISMS else (
        PASSWORD if right else WRONG_PASSWORD)
    client = auth_client(make_client, server, certificates, mechanism, secret)
    shown = described(client)
    if right:
        result = client.send(MESSAGE)
        shown += [repr(result), repr(client.connection_info), str(client.connection_info)]
        assert client.connection_info is not None
        assert client.connection_info.auth_mechanism == mechanism
        client.quit()
    else:
        with pytest.raises(AuthenticationError) as caught:
            client.send(MESSAGE)
        assert caught.value.code == 535
        shown.append(exception_text(caught.value))
        with pytest.raises(AuthenticationError) as again:
            client.connect()
        shown.append(exception_text(again.value))
        assert client.validate_credentials() is False
        client.quit()
    return shown + described(client)


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("right", [True, False], ids=["right secret", "wrong secret"])
def test_auth_secrets_stay_hidden_in_the_debug_trace(
    make_client: ClientFactory, auth_server: DevServer, certificates: Certificates,
    debug_logs: Collected, mechanism: str, right: bool,
) -> None:
    shown = run_auth(make_client, auth_server, certificates, mechanism, right)
    text = debug_logs.text
    # Not vacuous: the trace was on and covered the exchange.
    assert f"C: AUTH {mechanism}" in text
    assert ("S: 235" if right else "S: 535") in text
    assert_auth_trace_redacted(text)
    assert_hidden("\n".join([text, *shown]), [PASSWORD, WRONG_PASSWORD, TOKEN, WRONG_TOKEN])


def test_every_level_and_logger(make_client: ClientFactory, auth_server: DevServer,
                                certificates: Certificates, logs: Collected) -> None:
    """Each mechanism, with the right and the wrong secret, under one logging set-up."""
    shown: list[str] = []
    for mechanism in MECHANISMS:
        for right in (True, False):
            shown += run_auth(make_client, auth_server, certificates, mechanism, right)
    text = logs.text
    if logging.getLogger("mailwire").getEffectiveLevel() <= logging.DEBUG:
        assert all(f"C: AUTH {mechanism}" in text for mechanism in MECHANISMS)
    assert_auth_trace_redacted(text)
    assert_hidden("\n".join([text, *shown]), [PASSWORD, WRONG_PASSWORD, TOKEN, WRONG_TOKEN])


def test_secrets_in_a_client_never_connected(make_client: ClientFactory) -> None:
    client = make_client("smtp.example.com", 587, USER, PASSWORD, oauth_token=TOKEN,
                         proxy=f"socks5://proxyuser:{WRONG_PASSWORD}@127.0.0.1:1080")
    shown = described(client)
    assert "smtp.example.com" in shown[0]
    assert f"user={USER!r}" in shown[0]  # the user name is no secret: it is shown
    assert_hidden("\n".join(shown), [PASSWORD, TOKEN, WRONG_PASSWORD])


# -- proxy credentials -------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(certificates: Certificates) -> Iterator[DevServer]:
    """The SMTP server behind the proxies (plaintext: the proxy sees everything anyway)."""
    with DevServer(certificates=certificates) as running:
        yield running


def proxy_for(running: RunningProxy, password: str, as_url: bool) -> Any:
    assert running.username is not None
    if as_url:
        return f"{running.scheme}://{running.username}:{password}@{running.host}:{running.port}"
    if running.kind == "http":
        return HttpProxy(running.host, running.port, running.username, password)
    return SocksProxy(running.host, running.port, SocksVersion.SOCKS5, running.username,
                      password)


@pytest.mark.parametrize("fixture", ["socks5_auth_proxy", "http_auth_proxy"])
@pytest.mark.parametrize("as_url", [True, False], ids=["url", "object"])
@pytest.mark.parametrize("right", [True, False], ids=["right password", "wrong password"])
def test_proxy_credentials_stay_hidden(
    request: pytest.FixtureRequest, make_client: ClientFactory, target: DevServer,
    debug_logs: Collected, fixture: str, as_url: bool, right: bool,
) -> None:
    running: RunningProxy = request.getfixturevalue(fixture)
    assert running.password is not None
    wrong = running.password + "-wrong"
    password = running.password if right else wrong
    client = make_client("127.0.0.1", target.port, security="none", timeout=5.0,
                         proxy=proxy_for(running, password, as_url))
    shown = described(client)
    if right:
        client.send(MESSAGE)
        shown += [repr(client.connection_info), str(client.connection_info)]
        assert "C: MAIL FROM" in debug_logs.text  # the trace was on
        client.quit()
    else:
        with pytest.raises(ProxyAuthenticationError) as caught:
            client.send(MESSAGE)
        shown.append(exception_text(caught.value))
    shown += described(client)
    secrets = [running.password, wrong]
    assert_hidden("\n".join([debug_logs.text, *shown]), secrets)


@pytest.mark.parametrize("scheme", ["socks5", "socks5h", "socks4", "http"])
def test_proxy_password_hidden_when_the_proxy_is_down(
    make_client: ClientFactory, debug_logs: Collected, scheme: str
) -> None:
    client = make_client("127.0.0.1", 2525, security="none", timeout=2.0,
                         proxy=f"{scheme}://user:{PASSWORD}@127.0.0.1:{free_port()}")
    with pytest.raises(ProxyError) as caught:
        client.connect()
    assert_hidden("\n".join([debug_logs.text, exception_text(caught.value),
                             *described(client)]), [PASSWORD])


@pytest.mark.parametrize("url", [
    f"socks5://user:{PASSWORD}@",
    f"socks5://user:{PASSWORD}@proxy.example:notaport",
    f"gopher://user:{PASSWORD}@proxy.example:70",
    f"user:{PASSWORD}@proxy.example:1080",
    f"http://user:{PASSWORD}/x@proxy.example:3128",
])
def test_bad_proxy_url_errors_hide_the_password(make_client: ClientFactory,
                                                debug_logs: Collected, url: str) -> None:
    with pytest.raises(SmtpUsageError) as caught:
        make_client("127.0.0.1", 2525, security="none", proxy=url)
    assert_hidden("\n".join([debug_logs.text, exception_text(caught.value)]), [PASSWORD])


def test_collected_handler_is_not_blind(debug_logs: Collected) -> None:
    """The checks above would see a leak: a record with the secret is caught."""
    logging.getLogger("mailwire.protocol").debug("C: AUTH PLAIN %s", b64(f"\0{USER}\0{PASSWORD}"))
    with pytest.raises(AssertionError):
        assert_hidden(debug_logs.text, [PASSWORD])
    with pytest.raises(AssertionError):
        assert_auth_trace_redacted(debug_logs.text)


