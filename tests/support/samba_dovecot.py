"""A Postfix that accepts AUTH NTLM as Exchange does, verified by Samba through Dovecot.

The chain, all private to one temp directory and stopped at the end of the session::

    mailwire --AUTH NTLM--> Postfix smtpd (smtpd_sasl_type = dovecot, STARTTLS)
             --auth socket--> Dovecot 2.3 auth (auth_use_winbind = yes, mechanism ntlm)
             --squid-2.5-ntlmssp--> Samba's ntlm_auth --> winbindd (standalone server)
             --> the user in a private tdbsam (passdb.tdb)

Dovecot 2.3.13 and later have no NTLM of their own, hence winbind. Samba accepts NTLMv2 only
(``ntlm auth = ntlmv2-only``, its default, said out loud). The Samba tools see the user
through nss_wrapper (``libnss-wrapper``: a passwd file of the test's own, as Samba's own test
suite does), so no system account is created; winbindd's socket directory is given to
``ntlm_auth`` the same way (``SELFTEST_WINBINDD_SOCKET_DIR``).

Fixture ``ntlm_smtp`` (session-scoped) yields :class:`NtlmSmtp`: the Postfix server, the
domain and the user's credentials. Needs Debian's ``postfix``, ``dovecot-core``, ``winbind``,
``samba-common-bin`` and ``libnss-wrapper``, and root: skips without them, except under
``CI`` where it fails (as ``tests.support.postfix`` does).
"""

from __future__ import annotations

import contextlib
import glob
import os
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

__all__ = ["DOMAIN", "PASSWORD", "USER", "NtlmSmtp", "start_ntlm_smtp"]

#: The NetBIOS name of the standalone server, which is the domain of its own users.
DOMAIN = "MAILWIRETEST"
USER = "alice"
PASSWORD = "ntlm-test-password"

_UID = 60_001
_SBIN_PATH = "/usr/sbin:/usr/local/sbin:/sbin"
_START_TIMEOUT = 15.0
_TOOLS = ("smbpasswd", "winbindd", "wbinfo", "ntlm_auth", "dovecot")


@dataclass
class NtlmSmtp:
    """Postfix offering AUTH NTLM over STARTTLS, and the account it knows."""

    postfix: PostfixServer
    directory: Path
    user: str = USER
    password: str = PASSWORD
    domain: str = DOMAIN
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    @property
    def host(self) -> str:
        return self.postfix.host

    @property
    def port(self) -> int:
        return self.postfix.port

    def dovecot_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "dovecot.log").read_text("utf-8", "replace")
        return ""

    def stop(self) -> None:
        self.postfix.stop()
        _stop_processes(self._processes)
        shutil.rmtree(self.directory, ignore_errors=True)


def _stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    while processes:
        process = processes.pop()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _tools() -> dict[str, str]:
    if os.geteuid() != 0:
        _unavailable("these servers must run as root (Postfix, and files owned by its user)")
    path = f"{os.environ.get('PATH', '')}:{_SBIN_PATH}"
    found = {tool: shutil.which(tool, path=path) for tool in _TOOLS}
    missing = [tool for tool, where in found.items() if where is None]
    if missing:
        _unavailable(f"NTLM server tools missing ({', '.join(missing)}); Debian: apt-get install "
                     "dovecot-core winbind samba-common-bin (.ci/run does it)")
    return {tool: where for tool, where in found.items() if where is not None}


def _nss_wrapper() -> str:
    found = sorted(glob.glob("/usr/lib/*/libnss_wrapper.so")
                   + glob.glob("/usr/lib/libnss_wrapper.so"))
    if not found:
        _unavailable("nss_wrapper is missing; Debian: apt-get install libnss-wrapper "
                     "(.ci/run does it)")
    return found[0]


def _samba_environment(directory: Path, nss_wrapper: str) -> dict[str, str]:
    return {
        "PATH": f"{os.environ.get('PATH', '')}:{_SBIN_PATH}",
        "LD_PRELOAD": nss_wrapper,
        "NSS_WRAPPER_PASSWD": str(directory / "passwd"),
        "NSS_WRAPPER_GROUP": str(directory / "group"),
        "SELFTEST_WINBINDD_SOCKET_DIR": str(directory / "winbindd"),
    }


def _write_samba(directory: Path) -> Path:
    system_passwd = Path("/etc/passwd").read_text()
    system_group = Path("/etc/group").read_text()
    account = f"{USER}:x:{_UID}:{_UID}:NTLM test user:/nonexistent:/bin/false"
    (directory / "passwd").write_text(f"{system_passwd.rstrip()}\n{account}\n")
    (directory / "group").write_text(f"{system_group.rstrip()}\n{USER}:x:{_UID}:\n")
    for name in ("private", "lock", "state", "cache", "run", "ncalrpc", "winbindd"):
        (directory / name).mkdir(mode=0o755)
    configuration = directory / "smb.conf"
    configuration.write_text(f"""\
[global]
    workgroup = MAILWIRE
    netbios name = {DOMAIN}
    server role = standalone server
    security = user
    passdb backend = tdbsam:{directory / "private" / "passdb.tdb"}
    private dir = {directory / "private"}
    lock directory = {directory / "lock"}
    state directory = {directory / "state"}
    cache directory = {directory / "cache"}
    pid directory = {directory / "run"}
    ncalrpc dir = {directory / "ncalrpc"}
    winbindd socket directory = {directory / "winbindd"}
    log file = {directory / "samba.log"}
    disable netbios = yes
    ntlm auth = ntlmv2-only
    load printers = no
    printcap name = /dev/null
""")
    return configuration


def _write_dovecot(directory: Path, helper: Path) -> Path:
    for name in ("dovecot-run", "dovecot-state"):
        (directory / name).mkdir(mode=0o755)
    configuration = directory / "dovecot.conf"
    configuration.write_text(f"""\
base_dir = {directory / "dovecot-run"}
state_dir = {directory / "dovecot-state"}
instance_name = mailwire-ntlm-test
log_path = {directory / "dovecot.log"}
protocols =
listen = 127.0.0.1
ssl = no
auth_mechanisms = ntlm
auth_use_winbind = yes
auth_winbind_helper_path = {helper}
auth_failure_delay = 0
auth_verbose = yes
passdb {{
    driver = static
    args = nopassword=y
}}
userdb {{
    driver = static
    args = uid=65534 gid=65534 home=/nonexistent
}}
# The auth process finds no anvil-auth-penalty socket and so delays no one: tests fail
# logins on purpose, and Dovecot would otherwise slow each later one down by up to 15 s.
service anvil {{
    unix_listener anvil-auth-penalty {{
        path = anvil-auth-penalty-unused
    }}
}}
service auth {{
    user = root
    unix_listener auth-client {{
        path = {directory / "auth-client"}
        mode = 0666
    }}
}}
""")
    return configuration


def _run(command: list[str], environment: dict[str, str], log: Path, stdin: str = "") -> None:
    with log.open("ab") as sink:
        completed = subprocess.run(command, input=stdin.encode(), stdout=sink,
                                   stderr=subprocess.STDOUT, env=environment, timeout=20,
                                   check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{command[0]} exited with {completed.returncode}:\n"
                           f"{log.read_text('utf-8', 'replace')}")


def _wait_until(ready: object, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n"
                               f"{log.read_text('utf-8', 'replace') if log.exists() else ''}")
        if callable(ready) and ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} was not ready within {_START_TIMEOUT}s")


def _winbindd_answers(tools: dict[str, str], environment: dict[str, str]) -> bool:
    completed = subprocess.run([tools["wbinfo"], "--ping"], env=environment, timeout=10,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False)
    return completed.returncode == 0


def _socket_accepts(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def start_ntlm_smtp() -> NtlmSmtp:
    """Start winbindd, Dovecot and Postfix as described in the module docstring."""
    tools = _tools()
    nss_wrapper = _nss_wrapper()
    directory = Path(tempfile.mkdtemp(prefix="mailwire-ntlm-"))
    directory.chmod(0o755)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        environment = _samba_environment(directory, nss_wrapper)
        smb_conf = _write_samba(directory)
        setup = directory / "setup.log"
        _run([tools["smbpasswd"], "-c", str(smb_conf), "-a", "-s", USER], environment, setup,
             stdin=f"{PASSWORD}\n{PASSWORD}\n")

        winbindd_log = directory / "winbindd.out"
        with winbindd_log.open("wb") as sink:
            processes.append(subprocess.Popen(
                [tools["winbindd"], f"--configfile={smb_conf}", "--foreground",
                 "--no-process-group", "--debug-stdout"],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=environment))
        _wait_until(lambda: _winbindd_answers(tools, environment), "winbindd", processes[-1],
                    winbindd_log)

        helper = directory / "ntlm_auth"
        exports = " ".join(f"{name}='{value}'" for name, value in environment.items())
        helper.write_text(f"#!/bin/sh\nexport {exports}\n"
                          f"exec '{tools['ntlm_auth']}' --configfile='{smb_conf}' \"$@\"\n")
        helper.chmod(0o755)
        dovecot_conf = _write_dovecot(directory, helper)
        dovecot_log = directory / "dovecot.out"
        with dovecot_log.open("wb") as sink:
            processes.append(subprocess.Popen(
                [tools["dovecot"], "-F", "-c", str(dovecot_conf)],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                env={"PATH": environment["PATH"]}))
        _wait_until(lambda: _socket_accepts(directory / "auth-client"), "dovecot",
                    processes[-1], dovecot_log)

        postfix = start_postfix(tls=True, main_cf={
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": str(directory / "auth-client"),
        })
    except BaseException:
        _stop_processes(processes)
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return NtlmSmtp(postfix, directory, _processes=processes)


@pytest.fixture(scope="session")
def ntlm_smtp() -> Iterator[NtlmSmtp]:
    server = start_ntlm_smtp()
    try:
        yield server
    finally:
        server.stop()
