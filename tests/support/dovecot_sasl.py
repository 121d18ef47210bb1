"""A real Dovecot 2.3 authentication server behind a real Postfix, started by the tests.

Dovecot 2.3 has no SMTP submission server of its own, so Postfix's smtpd offers AUTH and hands
every exchange to Dovecot over its auth socket (``smtpd_sasl_type = dovecot``): the SASL
mechanisms are Dovecot's implementations, the SMTP around them Postfix's.

What this Dovecot (Debian's ``dovecot-core`` 2.3.19) offers through Postfix, and so what is
tested: PLAIN, LOGIN, CRAM-MD5, SCRAM-SHA-1, SCRAM-SHA-256 (users and passwords from a
passwd-file), OAUTHBEARER and XOAUTH2 (JWT bearer tokens signed with HS256 and checked locally,
``introspection_mode = local``; a refused token gets Dovecot's JSON error with the
``openid-configuration`` URL). Not offered by Dovecot 2.3: SCRAM-SHA-512 and the -PLUS variants
(2.4 adds channel binding); EXTERNAL exists in Dovecot but Postfix does not pass the client
certificate to it.

``dovecot_postfix`` (session fixture) yields a ``DovecotPostfix``: ``postfix`` (a
``PostfixServer`` with STARTTLS on ``port`` and implicit TLS on ``implicit_tls_port``, AUTH only
after TLS), ``token(user)`` for a valid token, and ``sasl_logins()``: the (mechanism, user) pairs
Postfix logged for successful logins. Dovecot runs as its own master process (``dovecot -F``)
with a private base directory, configuration and log, never the system instance; the fixtures
skip where Dovecot or root is missing, and fail under CI.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import grp
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.postfix import PostfixServer, _unavailable, start_postfix

__all__ = ["OPENID_CONFIGURATION", "PASSWORDS", "DovecotPostfix", "dovecot_postfix"]

PASSWORDS = {"alice": "dovecot-pa55-alice", "bob": "dovecot-pa55-bob"}
OPENID_CONFIGURATION = "https://auth.example.test/.well-known/openid-configuration"
MECHANISMS = ("plain", "login", "cram-md5", "scram-sha-1", "scram-sha-256", "oauthbearer",
              "xoauth2")
_START_TIMEOUT = 15.0
_CONFIG = """\
# Written by tests/support/dovecot_sasl.py for one test instance.
instance_name = mailwire-auth-test
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
auth_verbose = yes
auth_mechanisms = {mechanisms}
passdb {{
  driver = oauth2
  mechanisms = oauthbearer xoauth2
  args = {base}/oauth2.conf
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
# No delays after failures: the failure delay is 0, and the auth penalty (up to 15 s per
# address) is off when the auth process cannot reach anvil's penalty socket.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  unix_listener auth-client {{
    path = {base}/auth-client
    mode = 0666
  }}
}}
"""
_OAUTH2 = """\
introspection_mode = local
local_validation_key_dict = fs:posix:prefix={base}/keys/
username_attribute = sub
openid_configuration_url = {openid}
"""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Dovecot:
    """A running Dovecot master process and its private directory."""

    base: Path
    process: subprocess.Popen[bytes]
    signing_key: bytes = field(repr=False)

    @property
    def socket_path(self) -> Path:
        return self.base / "auth-client"

    def token(self, user: str, expires_in: float = 3600.0) -> str:
        """A JWT for ``user`` that this Dovecot accepts (HS256, key id ``default``)."""
        now = int(time.time())
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64url(json.dumps({"sub": user, "iat": now - 5,
                                   "exp": now + int(expires_in)}).encode())
        signature = hmac.new(self.signing_key, f"{header}.{body}".encode(), hashlib.sha256)
        return f"{header}.{body}.{_b64url(signature.digest())}"

    def log(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return (self.base / "dovecot.log").read_text("utf-8", "replace")
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.base, ignore_errors=True)


def start_dovecot(passwords: Mapping[str, str] = PASSWORDS) -> Dovecot:
    binary = shutil.which("dovecot", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if binary is None:
        _unavailable("Dovecot is not installed (Debian: apt-get install dovecot-core; "
                     ".ci/run does it)")
    if os.geteuid() != 0:
        _unavailable("the Dovecot fixture must run as root (Dovecot's master needs it)")
    base = Path(tempfile.mkdtemp(prefix="mailwire-dovecot-"))
    base.chmod(0o755)  # Postfix's smtpd (user postfix) must reach the socket
    for name in ("run", "state"):
        (base / name).mkdir()
    key = os.urandom(32)
    keys = base / "keys" / "default" / "HS256"
    keys.mkdir(parents=True)
    (keys / "default").write_text(base64.b64encode(key).decode())
    users = base / "users"
    users.write_text("".join(f"{user}:{{PLAIN}}{password}\n"
                             for user, password in passwords.items()))
    users.chmod(0o640)  # read by Dovecot's auth process, which runs as user dovecot
    os.chown(users, -1, grp.getgrnam("dovecot").gr_gid)
    (base / "oauth2.conf").write_text(_OAUTH2.format(base=base, openid=OPENID_CONFIGURATION))
    config = base / "dovecot.conf"
    config.write_text(_CONFIG.format(base=base, mechanisms=" ".join(MECHANISMS)))
    output = (base / "master-output.log").open("wb")
    process = subprocess.Popen([binary, "-F", "-c", str(config)], stdin=subprocess.DEVNULL,
                               stdout=output, stderr=subprocess.STDOUT)
    output.close()
    dovecot = Dovecot(base, process, key)
    _running.append(dovecot)
    try:
        _wait_for_socket(dovecot)
    except BaseException:
        details = dovecot.log() + (base / "master-output.log").read_text("utf-8", "replace")
        dovecot.stop()
        raise RuntimeError(f"Dovecot did not start:\n{details}") from None
    return dovecot


def _wait_for_socket(dovecot: Dovecot) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if dovecot.process.poll() is not None:
            raise RuntimeError(f"dovecot exited with {dovecot.process.returncode}")
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(dovecot.socket_path))
            return
        time.sleep(0.05)
    raise TimeoutError("the auth socket did not appear")


_running: list[Dovecot] = []


@atexit.register
def _stop_all() -> None:
    for dovecot in _running:
        with contextlib.suppress(Exception):
            dovecot.stop()


@dataclass
class DovecotPostfix:
    """Postfix offering AUTH (after TLS) with Dovecot doing the SASL."""

    dovecot: Dovecot
    postfix: PostfixServer

    def token(self, user: str, expires_in: float = 3600.0) -> str:
        return self.dovecot.token(user, expires_in)

    def sasl_logins(self) -> list[tuple[str, str]]:
        """(mechanism, user) of every successful login Postfix logged, in order."""
        return re.findall(r"sasl_method=(\S+), sasl_username=(\S+)", self.postfix.log())


@pytest.fixture(scope="session")
def dovecot_postfix() -> Iterator[DovecotPostfix]:
    dovecot = start_dovecot()
    try:
        postfix = start_postfix(tls=True, main_cf={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": str(dovecot.socket_path),
            "smtpd_tls_auth_only": "yes",
        })
        try:
            yield DovecotPostfix(dovecot, postfix)
        finally:
            postfix.stop()
    finally:
        dovecot.stop()
