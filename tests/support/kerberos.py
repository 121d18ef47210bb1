"""A throw-away MIT Kerberos realm and a Postfix that accepts AUTH GSSAPI through Cyrus SASL.

Fixtures (session-scoped, built once on first use):

========================  ====================================================================
``kerberos_realm``        :class:`KerberosRealm`: realm ``MAILWIRE.TEST`` in a temp directory
                          (``kdb5_util create``), principals added with ``kadmin.local``, a
                          ``krb5kdc`` on a free port of 127.0.0.1 (UDP and TCP), and the
                          tests' own ``krb5.conf`` (no DNS, no host name canonicalisation)
``kerberos_smtp``         :class:`KerberosSmtp`: the realm plus a Postfix instance
                          (``tests.support.postfix``, TLS) whose smtpd offers only
                          ``AUTH GSSAPI`` through Cyrus SASL, with the key of
                          ``smtp/localhost`` in a keytab given by ``import_environment =
                          KRB5_KTNAME=...``; ``myhostname`` is ``localhost``
========================  ====================================================================

Function-scoped ``kerberos_client`` points this test process at the realm
(``KRB5_CONFIG``) with a fresh credential cache for :data:`USER` (``KRB5CCNAME``, filled by
``kinit`` from the user's keytab) and restores the environment afterwards.

Principals: :data:`USER` (password :data:`USER_PASSWORD`, also in ``user_keytab``),
:data:`OTHER_USER` (keytab ``other_keytab``), ``smtp/localhost`` (in ``service_keytab``,
readable by the postfix user) and ``smtp/mail.example.test``, whose key no server holds.

Needs Debian's ``krb5-kdc``, ``krb5-admin-server`` (for ``kadmin.local`` only; no kadmind
runs), ``krb5-user`` (``kinit``) and ``libsasl2-modules-gssapi-mit``, and root for Postfix:
skips without them, except under ``CI`` where it fails (as ``tests.support.postfix`` does).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.postfix import PostfixServer, _unavailable, start_postfix

__all__ = [
    "OTHER_SERVICE_HOST",
    "OTHER_USER",
    "REALM",
    "SERVICE_HOST",
    "USER",
    "USER_PASSWORD",
    "KerberosRealm",
    "KerberosSmtp",
    "start_realm",
]

REALM = "MAILWIRE.TEST"
USER = f"alice@{REALM}"
USER_PASSWORD = "kerberos-test-password"
OTHER_USER = f"bob@{REALM}"
#: The host name the client uses; the server's principal is smtp/SERVICE_HOST.
SERVICE_HOST = "localhost"
#: A service the KDC knows but whose key the server does not hold.
OTHER_SERVICE_HOST = "mail.example.test"

_TOOLS = ("kdb5_util", "kadmin.local", "krb5kdc", "kinit")
_SBIN_PATH = "/usr/sbin:/usr/local/sbin:/sbin"
_START_TIMEOUT = 10.0
_TOOL_TIMEOUT = 20.0
# Postfix's default import_environment, to which the instance adds the Kerberos variables.
_POSTFIX_ENVIRONMENT = ("MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C "
                        "POSTLOG_SERVICE POSTLOG_HOSTNAME")


@dataclass
class KerberosRealm:
    """A running KDC and the files a client or a server needs to use it."""

    directory: Path
    krb5_conf: Path
    kdc_port: int
    user_keytab: Path
    other_keytab: Path
    service_keytab: Path
    realm: str = REALM
    _kdc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def environment(self) -> dict[str, str]:
        """What a process needs to use this realm, and nothing of the system's."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.kdc_conf)}

    @property
    def kdc_conf(self) -> Path:
        return self.directory / "kdc.conf"

    def kinit(self, ccache: Path, *, principal: str = USER, keytab: Path | None = None) -> None:
        """Fill ``ccache`` with a ticket-granting ticket for ``principal`` (from its keytab)."""
        keytab = keytab or (self.user_keytab if principal == USER else self.other_keytab)
        _run(["kinit", "-k", "-t", str(keytab), "-c", f"FILE:{ccache}", principal],
             self.environment(), self.directory / "kinit.log")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "kdc.log").read_text("utf-8", "replace")
        return ""

    def stop(self) -> None:
        kdc, self._kdc = self._kdc, None
        if kdc is not None and kdc.poll() is None:
            kdc.send_signal(signal.SIGTERM)
            try:
                kdc.wait(5)
            except subprocess.TimeoutExpired:
                kdc.kill()
                kdc.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class KerberosSmtp:
    """The realm, and Postfix offering AUTH GSSAPI for ``smtp@localhost`` over STARTTLS."""

    realm: KerberosRealm
    postfix: PostfixServer
    host: str = SERVICE_HOST
    #: Where a test's part of the Postfix log starts (set by the test).
    log_mark: int = 0

    @property
    def port(self) -> int:
        return self.postfix.port


def _tools() -> dict[str, str]:
    if os.geteuid() != 0:
        _unavailable("these servers must run as root (Postfix, and files owned by its user)")
    path = f"{os.environ.get('PATH', '')}:{_SBIN_PATH}"
    found = {tool: shutil.which(tool, path=path) for tool in _TOOLS}
    missing = [tool for tool, where in found.items() if where is None]
    if missing:
        _unavailable(f"MIT Kerberos tools missing ({', '.join(missing)}); Debian: apt-get install "
                     "krb5-kdc krb5-admin-server krb5-user (.ci/run does it)")
    return {tool: where for tool, where in found.items() if where is not None}


def _run(command: list[str], environment: dict[str, str], log: Path,
         stdin: str | None = None) -> None:
    """Run a Kerberos tool with only the realm's environment; its output goes to ``log``."""
    env = {"PATH": f"{os.environ.get('PATH', '')}:{_SBIN_PATH}", **environment}
    tool = shutil.which(command[0], path=env["PATH"]) or command[0]
    with log.open("ab") as sink:
        sink.write(f"$ {' '.join(command)}\n".encode())
        sink.flush()
        completed = subprocess.run([tool, *command[1:]], input=(stdin or "").encode(),
                                   stdout=sink, stderr=subprocess.STDOUT, env=env,
                                   timeout=_TOOL_TIMEOUT, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{command[0]} exited with {completed.returncode}:\n"
                           f"{log.read_text('utf-8', 'replace')}")


def _free_port() -> int:
    # The KDC listens on UDP and TCP: find a port free for both.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def _write_configuration(directory: Path, port: int) -> None:
    (directory / "krb5.conf").write_text(f"""\
[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{port}
    }}
[domain_realm]
    {SERVICE_HOST} = {REALM}
    {OTHER_SERVICE_HOST} = {REALM}
""")
    (directory / "kdc.conf").write_text(f"""\
[kdcdefaults]
    kdc_listen = 127.0.0.1:{port}
    kdc_tcp_listen = 127.0.0.1:{port}
[realms]
    {REALM} = {{
        database_name = {directory / "principal"}
        key_stash_file = {directory / "stash"}
        acl_file = {directory / "kadm5.acl"}
    }}
[logging]
    kdc = FILE:{directory / "kdc.log"}
""")


def _wait_for_kdc(kdc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if kdc.poll() is not None:
            raise RuntimeError(f"krb5kdc exited with {kdc.returncode}:\n"
                               f"{log.read_text('utf-8', 'replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1.0):
            return
        time.sleep(0.02)
    raise RuntimeError(f"krb5kdc did not listen on {port} within {_START_TIMEOUT}s")


def start_realm() -> KerberosRealm:
    """Create the realm, its principals and keytabs, and start its KDC."""
    tools = _tools()
    directory = Path(tempfile.mkdtemp(prefix="mailwire-kerberos-"))
    directory.chmod(0o755)  # the postfix user reads krb5.conf and its keytab here
    port = _free_port()
    _write_configuration(directory, port)
    realm = KerberosRealm(
        directory=directory,
        krb5_conf=directory / "krb5.conf",
        kdc_port=port,
        user_keytab=directory / "alice.keytab",
        other_keytab=directory / "bob.keytab",
        service_keytab=directory / "smtp.keytab",
    )
    try:
        environment = realm.environment()
        setup = directory / "setup.log"
        _run(["kdb5_util", "create", "-s", "-r", REALM, "-P", "master-key-of-a-test-realm"],
             environment, setup)
        _run(["kadmin.local", "-r", REALM], environment, setup, stdin=f"""\
addprinc -pw {USER_PASSWORD} {USER}
ktadd -k {realm.user_keytab} -norandkey {USER}
addprinc -randkey {OTHER_USER}
ktadd -k {realm.other_keytab} {OTHER_USER}
addprinc -randkey smtp/{SERVICE_HOST}@{REALM}
addprinc -randkey smtp/{OTHER_SERVICE_HOST}@{REALM}
ktadd -k {realm.service_keytab} smtp/{SERVICE_HOST}@{REALM}
""")
        os.chown(realm.service_keytab, pwd.getpwnam("postfix").pw_uid, -1)
        log = directory / "kdc.out"
        with log.open("wb") as sink:
            realm._kdc = subprocess.Popen(
                [tools["krb5kdc"], "-n", "-P", str(directory / "kdc.pid")],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", ""), **environment},
            )
        atexit.register(realm.stop)
        _wait_for_kdc(realm._kdc, port, log)
    except BaseException:
        realm.stop()
        raise
    return realm


def _sasl_plugin_present() -> bool:
    return bool(glob.glob("/usr/lib/*/sasl2/libgssapiv2.so*") or
                glob.glob("/usr/lib/sasl2/libgssapiv2.so*"))


def start_gssapi_postfix(realm: KerberosRealm) -> PostfixServer:
    """A Postfix instance (TLS) whose only SASL mechanism is GSSAPI, using the realm."""
    if not _sasl_plugin_present():
        _unavailable("Cyrus SASL's GSSAPI plug-in is missing; Debian: apt-get install "
                     "libsasl2-modules-gssapi-mit (.ci/run does it)")
    sasl = realm.directory / "sasl"
    sasl.mkdir(mode=0o755, exist_ok=True)
    (sasl / "smtpd.conf").write_text("mech_list: GSSAPI\n")
    replay_cache = realm.directory / "rcache"
    replay_cache.mkdir(mode=0o755, exist_ok=True)
    os.chown(replay_cache, pwd.getpwnam("postfix").pw_uid, -1)
    environment = (f"{_POSTFIX_ENVIRONMENT} KRB5_CONFIG={realm.krb5_conf} "
                   f"KRB5_KTNAME=FILE:{realm.service_keytab} KRB5RCACHEDIR={replay_cache}")
    return start_postfix(tls=True, main_cf={
        "myhostname": SERVICE_HOST,
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "cyrus",
        "smtpd_sasl_path": "smtpd",
        "cyrus_sasl_config_path": str(sasl),
        "smtpd_sasl_mechanism_filter": "gssapi",
        "smtpd_sasl_security_options": "noanonymous",
        "import_environment": environment,
    })


@pytest.fixture(scope="session")
def kerberos_realm() -> Iterator[KerberosRealm]:
    realm = start_realm()
    try:
        yield realm
    finally:
        realm.stop()


@pytest.fixture(scope="session")
def kerberos_smtp(kerberos_realm: KerberosRealm) -> Iterator[KerberosSmtp]:
    server = start_gssapi_postfix(kerberos_realm)
    try:
        yield KerberosSmtp(kerberos_realm, server)
    finally:
        server.stop()


@pytest.fixture
def kerberos_client(
    kerberos_realm: KerberosRealm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """This process uses the realm, with a fresh credential cache holding the user's TGT."""
    ccache = tmp_path / "krb5cc"
    kerberos_realm.kinit(ccache)
    monkeypatch.setenv("KRB5_CONFIG", str(kerberos_realm.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    monkeypatch.delenv("KRB5_CLIENT_KTNAME", raising=False)
    return ccache
