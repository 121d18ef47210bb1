"""A real Postfix SMTP server (``smtpd`` of Debian's ``postfix`` 3.7), started by the tests.

Postfix is a production MTA and offers what aiosmtpd does not: CHUNKING (BDAT),
DSN, ENHANCEDSTATUSCODES, PIPELINING, 8BITMIME, SMTPUTF8 and SIZE, with
Postfix's own parser, replies and pipelining behaviour.  (No AUTH: Postfix needs
Cyrus SASL or Dovecot for that.)

Fixtures (session-scoped; one instance each, started on first use):

==========================  ==========================================================
``postfix_server``          plaintext ESMTP, no STARTTLS offered; ``ca_file`` is None
``postfix_tls_server``      STARTTLS offered (``smtpd_tls_security_level = may``) on
                            ``port``, plus implicit TLS ("submissions" style,
                            ``smtpd_tls_wrappermode``) on ``implicit_tls_port``; the
                            certificate is for ``localhost``, ``127.0.0.1`` and
                            ``mail.example.test``, signed by the CA in ``ca_file``
``postfix_factory``         ``postfix_factory(tls=..., message_size_limit=...,
                            main_cf={...})``: one more instance with other settings,
                            stopped at the end of the session
==========================  ==========================================================

Each yields a :class:`PostfixServer`.  What every instance does:

* listens on 127.0.0.1 only, on free ports (nothing on port 25; no DNS lookups);
* accepts mail for any address in :data:`DOMAINS` and delivers it to one
  Maildir (``server.maildir``), read back with ``server.messages(...)``, which
  returns :class:`DeliveredMessage` objects (raw file, envelope sender and
  recipient, and ``content``: the message as the client sent it, see below);
* answers ``554 5.7.1 Relay access denied`` for any other domain;
* rejects on purpose, whatever the domain in :data:`DOMAINS`, also with a
  ``+tag`` after the local part (``refuse+t1@example.test``):

  ==================================  ============================================
  address                             reply
  ==================================  ============================================
  ``refuse@...`` (RCPT TO)            ``550 5.1.1 <...>: Recipient address
                                      rejected: refused by the test server``
  ``tempfail@...`` (RCPT TO)          ``450 4.2.0 ... try again later``
  ``refuse-sender@...`` (MAIL FROM)   ``553 5.7.1 ... refused by the test server``
  ``tempfail-sender@...`` (MAIL FROM) ``451 4.3.0 ... try again later``
  ``reject-data@...`` (sole RCPT)     accepted at RCPT, then ``550 5.7.1`` as the
                                      final reply to DATA / ``BDAT ... LAST``
  ``tempfail-data@...`` (sole RCPT)   accepted at RCPT, then ``451 4.3.0`` as the
                                      final reply to DATA / ``BDAT ... LAST``
  ==================================  ============================================

  (``smtpd_delay_reject = no``, so a sender is refused at MAIL FROM itself.  The
  end-of-data rejections apply only to a transaction with exactly one
  recipient: that is how Postfix evaluates recipient checks after DATA.)

* ``SIZE`` is ``message_size_limit`` (:data:`DEFAULT_MESSAGE_SIZE_LIMIT` unless
  given), exposed as ``server.message_size_limit``: ``MAIL FROM:<..> SIZE=n`` with
  a larger n gets ``552 5.3.4``.

What Postfix changes in a message (so what ``content`` can and cannot show):
Maildir files have LF line endings (``content_crlf`` converts back); the virtual
delivery agent prepends ``Return-Path``, ``X-Original-To`` and ``Delivered-To``;
smtpd prepends one ``Received`` header.  :attr:`DeliveredMessage.content` is the
file after those four header fields, i.e. the client's message with CRLF -> LF.
Postfix also (observed with 3.7) ends the header section at the first line that
is not a header field and inserts an empty line there (so a message without any
header gets a leading empty line), replaces a bare CR inside a line with a space
(seen with DATA), and gives a last line without a line ending one.  Headers are NOT
rewritten (``local_header_rewrite_clients`` is empty: no Message-ID, Date or
From is added, no address is qualified).

Several recipients give one file each (``X-Original-To``/``Delivered-To`` tell
which).  A DSN success notice (``NOTIFY=SUCCESS``) for a sender in
:data:`DOMAINS` is delivered to the same Maildir: filter with ``to=``.  The
servers are shared by the whole session: a test should ``clear()`` first, or use
a recipient address of its own and pass ``to=`` to ``messages``.

Postfix must run as root (``postfix start``); the fixtures skip when the
``postfix`` package is missing or the tests do not run as root, except under
``CI`` (environment variable set and not empty/0/false) where they fail.  Each
instance lives in its own directory under the system temp dir (``config_directory``
with main.cf/master.cf, ``queue_directory``, ``data_directory``, Maildir and
``maillog``), started with ``postfix -c DIR start`` and stopped with ``postfix -c
DIR stop`` (then SIGKILL of the master's process group if it is still there).
The system's /etc/postfix is read (``postfix-script``, ``postfix-files``) but
neither changed nor needed to hold a main.cf; a system Postfix, running or not, is
not touched.  ``server.log()`` returns the instance's maillog (written by postlogd).
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

__all__ = [
    "DEFAULT_MESSAGE_SIZE_LIMIT",
    "DOMAINS",
    "HOSTNAME",
    "LOOPBACK",
    "DeliveredMessage",
    "PostfixServer",
    "PostfixStartError",
    "as_stored",
    "original_content",
    "running_postfix",
    "start_postfix",
]

LOOPBACK = "127.0.0.1"
#: ``myhostname``: the name in the greeting, the EHLO reply and ``Received``.
HOSTNAME = "mail.example.test"
#: Every address at these domains is accepted and delivered to the Maildir.
DOMAINS: tuple[str, ...] = ("example.test", "example.com", "example.org", "example.net")
#: Postfix's own default.
DEFAULT_MESSAGE_SIZE_LIMIT = 10_240_000

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0
_START_ATTEMPTS = 3  # a new free port each time, in case another process took ours
_SBIN_PATH = "/usr/sbin:/usr/local/sbin:/sbin"

# Each special local part may carry a "+tag" (refuse+anything@example.test).
_RECIPIENT_ACCESS = """\
/^refuse(\\+[^@]*)?@/      550 5.1.1 refused by the test server
/^tempfail(\\+[^@]*)?@/    450 4.2.0 try again later
"""
_SENDER_ACCESS = """\
/^refuse-sender(\\+[^@]*)?@/    553 5.7.1 refused by the test server
/^tempfail-sender(\\+[^@]*)?@/  451 4.3.0 try again later
"""
_END_OF_DATA_ACCESS = """\
/^reject-data(\\+[^@]*)?@/      550 5.7.1 message rejected by the test server
/^tempfail-data(\\+[^@]*)?@/    451 4.3.0 message deferred by the test server, try again later
"""

# Every service Postfix needs to receive and deliver locally, none that listens
# on the network except the smtpd lines added per instance.  No chroot.
_MASTER_CF_SERVICES = """\
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
proxywrite unix  -       -       n       -       1       proxymap
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
virtual    unix  -       n       n       -       -       virtual
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
"""

# Header fields that delivery prepends (virtual(8)), in this order, before the
# Received header that smtpd prepends.
_DELIVERY_FIELDS = ("return-path", "x-original-to", "delivered-to")


class PostfixStartError(RuntimeError):
    """Postfix did not start (its maillog and command output are in the message)."""


# ---------------------------------------------------------------------------
# Delivered messages
# ---------------------------------------------------------------------------


def _split_fields(raw: bytes) -> tuple[list[tuple[str, bytes]], bytes]:
    """Leading header fields as (lower-case name, whole field bytes), and the rest.

    Stops at the first line that is not a header field or its continuation.
    """
    fields: list[tuple[str, bytes]] = []
    lines = raw.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        line = lines[index]
        name, colon, _ = line.partition(b":")
        if not colon or not name or not re.fullmatch(rb"[!-9;-~]+", name):
            break
        end = index + 1
        while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
            end += 1
        fields.append((name.decode("ascii").lower(), b"".join(lines[index:end])))
        index = end
    return fields, b"".join(lines[index:])


def _field_value(field_bytes: bytes) -> str:
    value = field_bytes.partition(b":")[2]
    return re.sub(r"\s+", " ", value.decode("utf-8", "surrogateescape")).strip()


def original_content(raw: bytes) -> bytes:
    """The message as the client sent it (LF line endings), from a delivered file.

    Drops what Postfix prepends: Return-Path, X-Original-To and Delivered-To
    (delivery), then exactly one Received header naming Postfix (smtpd).  Any
    Received header of the client's own message is kept.
    """
    content = raw
    for expected in _DELIVERY_FIELDS:
        fields, _ = _split_fields(content)
        if fields and fields[0][0] == expected:
            content = content[len(fields[0][1]) :]
    fields, _ = _split_fields(content)
    if not fields or fields[0][0] != "received" or b"(Postfix)" not in fields[0][1]:
        raise ValueError("no Received header from Postfix where one was expected")
    return content[len(fields[0][1]) :]


@dataclass(frozen=True)
class DeliveredMessage:
    """One file delivered to the Maildir: one message for one recipient."""

    path: Path
    raw: bytes

    def _prepended(self, name: str) -> str | None:
        fields, _ = _split_fields(self.raw)
        for field_name, field_bytes in fields[: len(_DELIVERY_FIELDS)]:
            if field_name == name:
                return _field_value(field_bytes)
        return None

    @property
    def recipient(self) -> str:
        """The envelope recipient, after any rewriting (``Delivered-To``)."""
        value = self._prepended("delivered-to")
        if value is None:
            raise ValueError(f"{self.path}: no Delivered-To header")
        return value

    @property
    def original_recipient(self) -> str | None:
        """The recipient as given in RCPT TO (``X-Original-To``)."""
        return self._prepended("x-original-to")

    @property
    def sender(self) -> str:
        """The envelope sender (MAIL FROM), ``""`` for the null sender <>."""
        value = self._prepended("return-path")
        if value is None:
            raise ValueError(f"{self.path}: no Return-Path header")
        return value.removeprefix("<").removesuffix(">")

    @property
    def received(self) -> str:
        """The Received header Postfix's smtpd added, unfolded."""
        content = self.raw
        for expected in _DELIVERY_FIELDS:
            fields, _ = _split_fields(content)
            if fields and fields[0][0] == expected:
                content = content[len(fields[0][1]) :]
        fields, _ = _split_fields(content)
        return _field_value(fields[0][1]) if fields else ""

    @property
    def queue_id(self) -> str | None:
        match = re.search(r"\(Postfix\) with \S+ id (\w+)", self.received)
        return match.group(1) if match else None

    @property
    def protocol(self) -> str | None:
        """``SMTP``, ``ESMTP``, ``ESMTPS`` (TLS), ``UTF8SMTP`` ... from the Received header."""
        match = re.search(r"\(Postfix\) with (\S+) id", self.received)
        return match.group(1) if match else None

    @property
    def content(self) -> bytes:
        """The message as sent, LF line endings (see the module doc for Postfix's changes)."""
        return original_content(self.raw)

    @property
    def content_crlf(self) -> bytes:
        """:attr:`content` with CRLF line endings, as it was on the wire (unstuffed)."""
        return self.content.replace(b"\n", b"\r\n")


def as_stored(message: bytes) -> bytes:
    """What :attr:`DeliveredMessage.content` is for ``message`` (CRLF or LF lines).

    Line endings become LF and a missing final line ending is added; Postfix's
    other changes (module doc) are not modelled.
    """
    stored = message.replace(b"\r\n", b"\n")
    return stored if stored.endswith(b"\n") or not stored else stored + b"\n"


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


@dataclass
class PostfixServer:
    """A running Postfix instance: where to connect, and its delivered mail."""

    host: str
    port: int
    #: The CA that signed the server certificate (TLS instances), else None.
    ca_file: Path | None
    #: The Maildir every accepted message is delivered to (``new/`` holds them).
    maildir: Path
    #: Implicit-TLS smtpd (TLS from the first byte), TLS instances only.
    implicit_tls_port: int | None
    message_size_limit: int
    base_directory: Path
    config_directory: Path
    log_file: Path
    domains: tuple[str, ...] = DOMAINS
    hostname: str = HOSTNAME
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's CA (and checks the host name)."""
        if self.ca_file is None:
            raise ValueError("this Postfix instance has no TLS")
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _files(self) -> list[Path]:
        new = self.maildir / "new"
        try:
            entries = list(new.iterdir())
        except FileNotFoundError:  # created by the first delivery
            return []
        stamped = []
        for path in entries:
            try:
                stamped.append((path.stat().st_mtime_ns, path.name, path))
            except FileNotFoundError:  # removed by clear() meanwhile
                continue
        return [path for _, _, path in sorted(stamped)]

    def delivered(self, *, to: str | None = None) -> list[DeliveredMessage]:
        """The messages delivered so far (no waiting), oldest first."""
        found = []
        for path in self._files():
            try:
                message = DeliveredMessage(path, path.read_bytes())
            except FileNotFoundError:
                continue
            recipients = (message.original_recipient or "", message.recipient)
            if to is None or any(_same_address(r, to) for r in recipients):
                found.append(message)
        return found

    def messages(
        self, timeout: float = 10.0, *, count: int = 1, to: str | None = None
    ) -> list[DeliveredMessage]:
        """Wait until at least ``count`` messages (for recipient ``to``, if given)
        are delivered; return all of them, oldest first.

        Raises ``AssertionError`` with the end of the maillog after ``timeout``
        seconds.  ``count=0`` returns at once.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.delivered(to=to)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                which = f" for {to}" if to else ""
                raise AssertionError(
                    f"{len(found)} of {count} message(s){which} delivered to {self.maildir} "
                    f"within {timeout}s; Postfix log:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def message(self, timeout: float = 10.0, *, to: str | None = None) -> DeliveredMessage:
        """The one message delivered (for ``to``): fails if there are several."""
        found = self.messages(timeout, count=1, to=to)
        assert len(found) == 1, f"expected one message, got {[m.path.name for m in found]}"
        return found[0]

    def clear(self) -> None:
        """Remove every delivered message (Maildir ``new/`` and ``cur/``)."""
        for sub in ("new", "cur"):
            directory = self.maildir / sub
            if directory.is_dir():
                for path in directory.iterdir():
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()

    def log(self) -> str:
        """The instance's whole maillog."""
        try:
            return self.log_file.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def stop(self) -> None:
        """Stop Postfix and remove its directory (the fixtures do it at session end)."""
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()


def _same_address(a: str, b: str) -> bool:
    a, b = a.strip().strip("<>"), b.strip().strip("<>")
    local_a, _, domain_a = a.rpartition("@")
    local_b, _, domain_b = b.rpartition("@")
    return local_a == local_b and domain_a.lower() == domain_b.lower()


# ---------------------------------------------------------------------------
# Finding Postfix
# ---------------------------------------------------------------------------


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{message} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)


def _postfix_binary() -> str:
    """The ``postfix`` command; skip (or fail under CI) where it cannot be used."""
    path = os.environ.get("PATH", "")
    postfix = shutil.which("postfix", path=f"{path}:{_SBIN_PATH}")
    postconf = shutil.which("postconf", path=f"{path}:{_SBIN_PATH}")
    if postfix is None or postconf is None:
        _unavailable("Postfix is not installed (Debian: apt-get install postfix; .ci/run does it)")
    if os.geteuid() != 0:
        _unavailable("the Postfix fixtures must run as root (postfix start needs it)")
    for user in ("postfix", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            _unavailable(f"no system user {user!r}: the postfix package is not set up")
    return postfix


# ---------------------------------------------------------------------------
# Starting and stopping an instance
# ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _main_cf(settings: Mapping[str, str]) -> str:
    lines = ["# Written by tests/support/postfix.py for one test instance."]
    for name, value in settings.items():
        if "\n" in value:
            raise ValueError(f"main.cf value of {name} has a newline")
        lines.append(f"{name} = {value}")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    path.chmod(mode)
    # Postfix waits (300 ms at a time) until a configuration file or table it
    # reads is at least a second old, in case it is still being written: date
    # ours back so that start-up does not pay that.
    past = time.time() - 60
    os.utime(path, (past, past))


def _settings(
    base: Path,
    conf: Path,
    *,
    tls: bool,
    message_size_limit: int,
    domains: tuple[str, ...],
    nobody: tuple[int, int],
) -> dict[str, str]:
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": str(base / "queue"),
        "data_directory": str(base / "data"),
        # Names and networks: no lookups of our own host name or of clients.
        "myhostname": HOSTNAME,
        "mydomain": "example.test",
        "myorigin": "$myhostname",
        "inet_interfaces": LOOPBACK,
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_peername_lookup": "no",
        "smtp_dns_support_level": "disabled",
        "smtp_host_lookup": "native",
        "smtpd_banner": "$myhostname ESMTP Postfix",
        "biff": "no",
        # Logging to our own file through postlogd (maillog_file needs the prefix).
        "maillog_file": str(base / "maillog"),
        "maillog_file_prefixes": str(base),
        "syslog_name": "postfix-mailwire-test",
        # No local delivery, no aliases (nothing from /etc/aliases).
        "mydestination": "",
        "local_recipient_maps": "",
        "alias_maps": "",
        "alias_database": "",
        # Everything at DOMAINS into one Maildir, as user nobody.
        "virtual_mailbox_domains": ", ".join(domains),
        "virtual_mailbox_base": str(base / "mail"),
        "virtual_mailbox_maps": f"regexp:{conf / 'virtual_mailbox'}",
        "virtual_uid_maps": f"static:{nobody[0]}",
        "virtual_gid_maps": f"static:{nobody[1]}",
        "virtual_minimum_uid": "1",
        "virtual_mailbox_limit": "0",
        "mailbox_size_limit": "0",
        # Nothing leaves: other domains are refused, and any mail Postfix itself
        # would send elsewhere (bounces, DSN to other senders) fails at once.
        "default_transport": "error:no outbound mail from this test server",
        "relay_transport": "error:no outbound mail from this test server",
        "smtpd_relay_restrictions": "reject_unauth_destination",
        "smtpd_client_restrictions": "",
        "smtpd_helo_restrictions": "",
        "smtpd_delay_reject": "no",
        "smtpd_sender_restrictions": f"check_sender_access regexp:{conf / 'sender_access'}",
        "smtpd_recipient_restrictions": (
            f"check_recipient_access regexp:{conf / 'recipient_access'}"
        ),
        "smtpd_end_of_data_restrictions": (
            f"check_recipient_access regexp:{conf / 'end_of_data_access'}"
        ),
        # Keep the message as sent: no header rewriting, no added headers.
        "local_header_rewrite_clients": "",
        "remote_header_rewrite_domain": "",
        # Extensions (the defaults already, said out loud).
        "smtputf8_enable": "yes",
        "message_size_limit": str(message_size_limit),
        # No slowing down or disconnecting a busy or erring test client.
        "in_flow_delay": "0",
        "smtpd_error_sleep_time": "0",
        "smtpd_soft_error_limit": "1000",
        "smtpd_hard_error_limit": "1000",
        "smtpd_junk_command_limit": "100000",
        "smtpd_client_connection_count_limit": "0",
        "smtpd_tls_security_level": "none",
    }
    if tls:
        settings.update(
            {
                "smtpd_tls_security_level": "may",
                "smtpd_tls_cert_file": str(conf / "tls" / "cert.pem"),
                "smtpd_tls_key_file": str(conf / "tls" / "key.pem"),
                "smtpd_tls_loglevel": "1",
                "smtpd_tls_received_header": "no",
            }
        )
    return settings


def _write_certificates(directory: Path) -> Path:
    import trustme

    directory.mkdir(mode=0o755)
    authority = trustme.CA()
    leaf = authority.issue_cert("localhost", LOOPBACK, HOSTNAME)
    authority.cert_pem.write_to_path(str(directory / "ca.pem"))
    _write(directory / "cert.pem", b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    _write(directory / "key.pem", leaf.private_key_pem.bytes(), 0o600)
    return directory / "ca.pem"


def _master_pid(base: Path) -> int | None:
    try:
        text = (base / "queue" / "pid" / "master.pid").read_text().strip()
        return int(text.split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _group_alive(pgid: int) -> bool:
    """Whether any process of the master's process group (its session) still runs.

    Zombies count as gone: the master is reparented to PID 1 once ``postfix
    start`` returns, and some init programs reap slowly.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.kill(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        # fields: state, ppid, pgrp, session, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _run_postfix(postfix: str, conf: Path, command: str, output: Path, timeout: float) -> int:
    """``postfix -c conf command``; its output appended to ``output``.

    Output goes to a file, not a pipe: the master daemon that ``start`` leaves
    running could otherwise hold the pipe open.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAIL_")}
    env["PATH"] = f"{env.get('PATH', '')}:{_SBIN_PATH}"
    with output.open("ab") as sink:
        sink.write(f"$ postfix -c {conf} {command}\n".encode())
        sink.flush()
        try:
            completed = subprocess.run(
                [postfix, "-c", str(conf), command],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            sink.write(f"(timed out after {timeout}s)\n".encode())
            return -1
    return completed.returncode


def _wait_for_greeting(port: int, deadline: float) -> str:
    last_error = "no attempt"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=2.0) as connection:
                reader = connection.makefile("rb")
                line = reader.readline()
                if line.startswith(b"220 "):
                    connection.sendall(b"QUIT\r\n")
                    reader.readline()
                    return line.decode("ascii", "replace").strip()
                last_error = f"greeting {line!r}"
        except OSError as error:
            last_error = repr(error)
        time.sleep(0.05)
    raise PostfixStartError(f"port {port} did not greet: {last_error}")


def _stop_instance(postfix: str, base: Path) -> None:
    conf = base / "conf"
    output = base / "postfix-command.log"
    pid = _master_pid(base)
    if conf.is_dir():
        _run_postfix(postfix, conf, "stop", output, _STOP_TIMEOUT)
    if pid is not None:
        deadline = time.monotonic() + _STOP_TIMEOUT
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _group_alive(pid):
            # The master leads its own process group (postfix-script's own fallback).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(base, ignore_errors=True)


_running: dict[Path, str] = {}
_running_lock = threading.Lock()


def _cleanup_at_exit() -> None:
    with _running_lock:
        leftovers = list(_running.items())
        _running.clear()
    for base, postfix in leftovers:
        with contextlib.suppress(Exception):
            _stop_instance(postfix, base)


atexit.register(_cleanup_at_exit)


def _start_once(
    postfix: str,
    *,
    tls: bool,
    message_size_limit: int,
    domains: tuple[str, ...],
    main_cf: Mapping[str, str],
) -> PostfixServer:
    nobody = pwd.getpwnam("nobody")
    try:
        nobody_gid = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        nobody_gid = nobody.pw_gid
    # Not under pytest's basetemp: that is 0700 root, and the Postfix daemons
    # (user postfix; virtual delivers as nobody) must reach these directories.
    base = Path(tempfile.mkdtemp(prefix="mailwire-postfix-"))
    base.chmod(0o755)
    with _running_lock:
        _running[base] = postfix
    conf = base / "conf"
    conf.mkdir(mode=0o755)
    (base / "queue").mkdir(mode=0o755)  # post-install creates the rest, with owners
    data = base / "data"
    data.mkdir(mode=0o700)
    os.chown(data, pwd.getpwnam("postfix").pw_uid, -1)
    mail = base / "mail"
    mail.mkdir(mode=0o755)
    os.chown(mail, nobody.pw_uid, nobody_gid)
    ca_file = _write_certificates(conf / "tls") if tls else None

    port = _free_port()
    implicit_tls_port = None
    while tls and implicit_tls_port in (None, port):
        implicit_tls_port = _free_port()
    settings = _settings(
        base,
        conf,
        tls=tls,
        message_size_limit=message_size_limit,
        domains=domains,
        nobody=(nobody.pw_uid, nobody_gid),
    )
    settings.update(main_cf)
    _write(conf / "main.cf", _main_cf(settings))
    services = f"{LOOPBACK}:{port} inet n - n - - smtpd\n"
    if implicit_tls_port is not None:
        services += (
            f"{LOOPBACK}:{implicit_tls_port} inet n - n - - smtpd\n"
            "  -o smtpd_tls_wrappermode=yes\n"
            "  -o smtpd_tls_security_level=encrypt\n"
        )
    _write(conf / "master.cf", services + _MASTER_CF_SERVICES)
    _write(conf / "virtual_mailbox", "/./ Maildir/\n")
    _write(conf / "recipient_access", _RECIPIENT_ACCESS)
    _write(conf / "sender_access", _SENDER_ACCESS)
    _write(conf / "end_of_data_access", _END_OF_DATA_ACCESS)

    output = base / "postfix-command.log"
    server = PostfixServer(
        host=LOOPBACK,
        port=port,
        ca_file=ca_file,
        maildir=mail / "Maildir",
        implicit_tls_port=implicit_tls_port,
        message_size_limit=int(settings["message_size_limit"]),
        base_directory=base,
        config_directory=conf,
        log_file=base / "maillog",
        domains=domains,
    )

    def stop() -> None:
        with _running_lock:
            _running.pop(base, None)
        _stop_instance(postfix, base)

    server._stop = stop
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        status = _run_postfix(postfix, conf, "start", output, _START_TIMEOUT)
        if status != 0:
            raise PostfixStartError(f"postfix start exited with {status}")
        _wait_for_greeting(port, deadline)
        if implicit_tls_port is not None:
            # TCP accept is enough here: the greeting comes after the handshake.
            with socket.create_connection((LOOPBACK, implicit_tls_port), timeout=2.0):
                pass
    except BaseException as error:
        details = ""
        with contextlib.suppress(OSError):
            details += output.read_text("utf-8", "replace")
        details += server.log_tail()
        stop()
        if isinstance(error, PostfixStartError | OSError):
            raise PostfixStartError(f"{error}\n{details}") from error
        raise
    return server


def start_postfix(
    *,
    tls: bool = False,
    message_size_limit: int = DEFAULT_MESSAGE_SIZE_LIMIT,
    domains: tuple[str, ...] = DOMAINS,
    main_cf: Mapping[str, str] | None = None,
) -> PostfixServer:
    """Start a Postfix instance and wait until it greets; call ``.stop()`` when done.

    ``main_cf`` overrides or adds main.cf parameters (e.g.
    ``{"smtpd_discard_ehlo_keywords": "chunking"}`` to hide CHUNKING).  Skips the
    test (fails under CI) when Postfix cannot run here.
    """
    postfix = _postfix_binary()
    last_error: PostfixStartError | None = None
    for _ in range(_START_ATTEMPTS):
        try:
            return _start_once(
                postfix,
                tls=tls,
                message_size_limit=message_size_limit,
                domains=tuple(domains),
                main_cf=dict(main_cf or {}),
            )
        except PostfixStartError as error:
            last_error = error
            if "Address already in use" not in str(error):
                break
    assert last_error is not None
    raise last_error


@contextlib.contextmanager
def running_postfix(**options: Any) -> Iterator[PostfixServer]:
    """``with running_postfix(...) as server:`` -- :func:`start_postfix`, stopped after."""
    server = start_postfix(**options)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postfix_factory() -> Iterator[Callable[..., PostfixServer]]:
    """``postfix_factory(**start_postfix options)``: an extra instance for the session."""
    started: list[PostfixServer] = []

    def start(**options: Any) -> PostfixServer:
        server = start_postfix(**options)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture(scope="session")
def postfix_server() -> Iterator[PostfixServer]:
    """Postfix, plaintext ESMTP (no STARTTLS), CHUNKING, DSN, SMTPUTF8, SIZE, ..."""
    server = start_postfix()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postfix_tls_server() -> Iterator[PostfixServer]:
    """Postfix offering STARTTLS on ``port`` and implicit TLS on ``implicit_tls_port``."""
    server = start_postfix(tls=True)
    try:
        yield server
    finally:
        server.stop()
