"""Real proxy servers, started by the tests on 127.0.0.1, as pytest fixtures.

Every fixture yields a :class:`RunningProxy`.  The servers are real programs,
each started in its own temporary directory with its own configuration file and
log, on a free port of 127.0.0.1; a fixture waits until its server accepts TCP
connections and stops it (the whole process group) at teardown.  An ``atexit``
hook stops whatever is still running if pytest exits without tearing down.

=========================  =========  =============================================
fixture                    server     what it speaks / accepts
=========================  =========  =============================================
``socks5_proxy``           danted     SOCKS5 only, "no authentication" method
``socks5_auth_proxy``      danted     SOCKS5 only, username/password (RFC 1929)
                                      checked against a dedicated system user
``socks5_blocking_proxy``  danted     SOCKS5 (and 4), no auth; refuses every
                                      target on :data:`BLOCKED_HOST`
``socks4_proxy``           danted     SOCKS4 only, IPv4 targets (dante has no
                                      SOCKS4a: a 0.0.0.x address is not resolved)
``socks4a_proxy``          OpenSSH    SOCKS4 + SOCKS4a (target host names are
                           ``ssh -D`` resolved by the proxy); also SOCKS5, no auth
``http_proxy``             tinyproxy  HTTP CONNECT to any port, no auth
``http_auth_proxy``        tinyproxy  HTTP CONNECT, ``Proxy-Authorization: Basic``
``http_blocking_proxy``    tinyproxy  HTTP CONNECT, no auth; answers ``403
                                      Filtered`` for targets on :data:`BLOCKED_HOST`
=========================  =========  =============================================

Every proxy may connect to 127.0.0.1 (and, except the blocking ones, to any
address) on any port: the targets of the tests are servers on ephemeral ports.

How refusals look on the wire (what a client sees):

* dante, SOCKS5 blocked target: reply code 0x02 "connection not allowed by
  ruleset"; wrong username/password: RFC 1929 status != 0, then close.
* dante, SOCKS4 request to the SOCKS5-only proxy (or vice versa): rejected
  by rule (SOCKS4 reply 0x5b / SOCKS5 reply 0x02).
* OpenSSH ``ssh -D``: when the target cannot be reached it closes the client
  connection without sending a SOCKS reply.
* tinyproxy: ``407 Proxy Authentication Required`` without credentials,
  ``401 Unauthorized`` with wrong ones, ``403 Filtered`` for a blocked target.

Binaries come from Debian packages (``dante-server``, ``tinyproxy``,
``openssh-server`` + ``openssh-client``); ``.ci/run`` installs them.  When one
is missing a fixture skips, except under ``CI`` where it fails.
``socks5_auth_proxy`` needs root (it creates a system user and dante must read
/etc/shadow) and skips otherwise.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "BLOCKED_HOST",
    "LOOPBACK",
    "ProxyStartError",
    "RunningProxy",
    "free_port",
]

LOOPBACK = "127.0.0.1"
#: The blocking proxies refuse every connection to this address (any port).  It
#: is on the loopback interface, so a test can listen there to prove that the
#: refusal comes from the proxy and not from a missing server.
BLOCKED_HOST = "127.0.0.2"

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_START_ATTEMPTS = 3  # a new free port each time, in case another process took ours
_AUTH_USER_MARKER = "mailwire test SOCKS user"
_AUTH_USER_PREFIX = "mwsocks"


# ---------------------------------------------------------------------------
# Public helpers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningProxy:
    """A proxy server that is up and accepting connections.

    ``kind`` is one of ``"socks4"``, ``"socks4a"``, ``"socks5"`` or ``"http"``.
    ``socks4a`` is the SOCKS4 wire protocol with the 4a host-name extension
    (``python_socks``: ``ProxyType.SOCKS4`` with ``rdns=True``).
    """

    kind: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def scheme(self) -> str:
        """The URL scheme ``python_socks`` understands (``socks4a`` -> ``socks4``)."""
        return "socks4" if self.kind == "socks4a" else self.kind

    @property
    def url(self) -> str:
        """``scheme://[user:password@]host:port``, e.g. for ``Proxy.from_url``."""
        userinfo = ""
        if self.username is not None:
            userinfo = f"{self.username}:{self.password or ''}@"
        return f"{self.scheme}://{userinfo}{self.host}:{self.port}"


class ProxyStartError(RuntimeError):
    """A proxy server did not come up; the message carries its log tail."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------
# Process management
# ---------------------------------------------------------------------------

_live_lock = threading.Lock()
_live: dict[int, subprocess.Popen[bytes]] = {}
_created_users: set[str] = set()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` and its process group (it was started as a new session)."""
    with _live_lock:
        _live.pop(proc.pid, None)
    for sig, wait in ((signal.SIGTERM, _STOP_TIMEOUT), (signal.SIGKILL, _STOP_TIMEOUT)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # pgid == pid: start_new_session=True
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Children (e.g. danted's workers) share the group; reap stragglers.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _cleanup_at_exit() -> None:
    with _live_lock:
        procs = list(_live.values())
    for proc in procs:
        _stop(proc)
    for user in list(_created_users):
        _delete_user(user)


atexit.register(_cleanup_at_exit)


def _log_tail(paths: Sequence[Path], lines: int = 40) -> str:
    parts = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            parts.append(f"--- {path}: unreadable ({exc})")
            continue
        tail = "\n".join(text.splitlines()[-lines:])
        parts.append(f"--- last {lines} lines of {path}:\n{tail}")
    return "\n".join(parts)


def _wait_accepting(
    proc: subprocess.Popen[bytes], port: int, name: str, logs: Sequence[Path]
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise ProxyStartError(
                f"{name} exited with code {proc.returncode} before accepting connections "
                f"on {LOOPBACK}:{port}\n{_log_tail(logs)}"
            )
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                pass
        except OSError:
            if time.monotonic() > deadline:
                _stop(proc)
                raise ProxyStartError(
                    f"{name} did not accept connections on {LOOPBACK}:{port} within "
                    f"{_START_TIMEOUT:.0f}s\n{_log_tail(logs)}"
                ) from None
            time.sleep(0.05)
            continue
        if proc.poll() is None:  # the listener is ours, not a process that took the port
            return


def _spawn(
    argv: Sequence[str],
    *,
    name: str,
    workdir: Path,
    port: int,
    logs: Sequence[Path],
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (output into ``workdir/<name>.out``) and wait until ``port`` accepts."""
    out = workdir / f"{name}.out"
    all_logs = [out, *logs]
    with out.open("ab") as out_file:
        proc = subprocess.Popen(
            list(argv),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    with _live_lock:
        _live[proc.pid] = proc
    try:
        _wait_accepting(proc, port, name, all_logs)
    except BaseException:
        _stop(proc)
        raise
    return proc


def _start_on_free_port(
    start: Callable[[int], subprocess.Popen[bytes]],
) -> tuple[subprocess.Popen[bytes], int]:
    """Call ``start(port)`` with a fresh free port, retrying if the server exits early."""
    last: ProxyStartError | None = None
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        try:
            return start(port), port
        except ProxyStartError as exc:
            last = exc
            if "in use" not in str(exc):
                break  # not a port clash ("Address already in use"): it would repeat
    assert last is not None
    raise last


def _binary(name: str) -> str:
    """Absolute path of a server binary; skip (or fail under CI) if it is missing."""
    found = shutil.which(name)
    if found is None:
        for directory in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
            candidate = Path(directory, name)
            if candidate.is_file() and os.access(candidate, os.X_OK):
                found = str(candidate)
                break
    if found is None:
        message = (
            f"{name} is not installed (Debian: apt-get install dante-server tinyproxy "
            "openssh-server openssh-client; .ci/run does it)"
        )
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def _is_root() -> bool:
    return os.geteuid() == 0


# ---------------------------------------------------------------------------
# dante (danted): SOCKS4 and SOCKS5
# ---------------------------------------------------------------------------


def _danted_config(port: int, *, socksmethod: str, rules: str) -> str:
    users = (
        "user.privileged: root\nuser.unprivileged: nobody\n"
        if _is_root()
        else ""  # not root: dante keeps running as the current user
    )
    return (
        "# generated by tests/support/proxies.py\n"
        "logoutput: stderr\n"
        f"internal: {LOOPBACK} port = {port}\n"
        f"external: {LOOPBACK}\n"
        "clientmethod: none\n"
        f"socksmethod: {socksmethod}\n"
        f"{users}"
        "timeout.negotiate: 10\n"
        f"client pass {{\n  from: 127.0.0.0/8 to: {LOOPBACK}/32\n  log: error\n}}\n"
        f"{rules}"
    )


@contextlib.contextmanager
def _danted(
    tmp_path_factory: pytest.TempPathFactory,
    label: str,
    *,
    socksmethod: str,
    rules: str,
) -> Iterator[int]:
    danted = _binary("danted")
    workdir = tmp_path_factory.mktemp(f"danted-{label}")
    env = dict(os.environ, TMPDIR=str(workdir))

    def start(port: int) -> subprocess.Popen[bytes]:
        config = workdir / "danted.conf"
        config.write_text(_danted_config(port, socksmethod=socksmethod, rules=rules))
        # danted stays in the foreground unless given -D; -d 0: no debug output.
        return _spawn(
            [danted, "-f", str(config), "-p", str(workdir / "danted.pid"), "-d", "0"],
            name="danted",
            workdir=workdir,
            port=port,
            logs=[],
            env=env,
        )

    proc, port = _start_on_free_port(start)
    try:
        yield port
    finally:
        _stop(proc)


def _socks_rule(action: str, to: str, *options: str) -> str:
    """A dante socks-rule; one keyword per line (a list value runs to the end of its line)."""
    body = "".join(f"  {option}\n" for option in (f"from: 0/0 to: {to}", *options))
    return f"socks {action} {{\n{body}  log: error connect disconnect\n}}\n"


@pytest.fixture(scope="session")
def socks5_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    """dante, SOCKS5 only, no authentication."""
    rules = _socks_rule("pass", "0/0", "proxyprotocol: socks_v5")
    with _danted(tmp_path_factory, "socks5", socksmethod="none", rules=rules) as port:
        yield RunningProxy("socks5", LOOPBACK, port, None, None)


@pytest.fixture(scope="session")
def socks4_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    """dante, SOCKS4 only (IPv4 targets; dante does not implement SOCKS4a)."""
    rules = _socks_rule("pass", "0/0", "proxyprotocol: socks_v4")
    with _danted(tmp_path_factory, "socks4", socksmethod="none", rules=rules) as port:
        yield RunningProxy("socks4", LOOPBACK, port, None, None)


@pytest.fixture(scope="session")
def socks5_blocking_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    """dante, no auth, that refuses every target on BLOCKED_HOST (127.0.0.2), any port.

    SOCKS5 clients get reply 0x02 "connection not allowed by ruleset".  Targets
    on 127.0.0.1 pass.
    """
    rules = _socks_rule("block", f"{BLOCKED_HOST}/32") + _socks_rule("pass", "0/0")
    with _danted(tmp_path_factory, "blocking", socksmethod="none", rules=rules) as port:
        yield RunningProxy("socks5", LOOPBACK, port, None, None)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _delete_user(name: str) -> None:
    _created_users.discard(name)
    if not _user_exists(name):
        return
    userdel = shutil.which("userdel") or "/usr/sbin/userdel"
    subprocess.run(
        [userdel, name], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _delete_stale_auth_users() -> None:
    """Remove users left behind by earlier sessions that were killed (their pid is gone)."""
    pattern = re.compile(rf"^{_AUTH_USER_PREFIX}(\d+)$")
    for entry in pwd.getpwall():
        match = pattern.match(entry.pw_name)
        if match is None or entry.pw_gecos != _AUTH_USER_MARKER:
            continue
        pid = int(match.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _delete_user(entry.pw_name)
        except PermissionError:
            pass  # alive, someone else's


def _create_auth_user() -> tuple[str, str]:
    """Create a system user (no home, no shell) with a random password.

    The name carries this process's pid so that concurrent pytest sessions on
    one machine do not share (or delete) each other's user.
    """
    useradd = _binary("useradd")
    chpasswd = _binary("chpasswd")
    _delete_stale_auth_users()
    name = f"{_AUTH_USER_PREFIX}{os.getpid()}"
    password = "pw-" + secrets.token_hex(8)
    if not _user_exists(name):
        subprocess.run(
            [
                useradd,
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                _AUTH_USER_MARKER,
                name,
            ],
            check=True,
            capture_output=True,
        )
    _created_users.add(name)
    subprocess.run([chpasswd], input=f"{name}:{password}\n".encode(), check=True)
    return name, password


@pytest.fixture(scope="session")
def socks5_auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    """dante, SOCKS5 only, username/password method against a dedicated system user.

    dante's ``username`` method checks the system password database, so this
    fixture creates a system user ``mwsocks<pid>`` (no home, nologin shell,
    random password, deleted at teardown).  Only that user is let through.
    """
    if not _is_root():
        pytest.skip(
            "socks5_auth_proxy needs root: dante checks SOCKS5 usernames against "
            "/etc/shadow and the fixture creates a dedicated system user"
        )
    _binary("danted")
    user, password = _create_auth_user()
    try:
        rules = _socks_rule(
            "pass", "0/0", "proxyprotocol: socks_v5", "socksmethod: username", f"user: {user}"
        )
        with _danted(tmp_path_factory, "socks5-auth", socksmethod="username", rules=rules) as port:
            yield RunningProxy("socks5", LOOPBACK, port, user, password)
    finally:
        _delete_user(user)


# ---------------------------------------------------------------------------
# tinyproxy: HTTP CONNECT
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def _tinyproxy(
    tmp_path_factory: pytest.TempPathFactory,
    label: str,
    *,
    extra: str = "",
    filter_rules: str | None = None,
) -> Iterator[int]:
    tinyproxy = _binary("tinyproxy")
    workdir = tmp_path_factory.mktemp(f"tinyproxy-{label}")
    log = workdir / "tinyproxy.log"
    filter_lines = ""
    if filter_rules is not None:
        filter_file = workdir / "filter"
        filter_file.write_text(filter_rules)
        filter_lines = f'Filter "{filter_file}"\nFilterType ere\n'

    def start(port: int) -> subprocess.Popen[bytes]:
        config = workdir / "tinyproxy.conf"
        # No User/Group: tinyproxy keeps the current user (it only warns when
        # that is root), so it can write its log in the private temp dir.
        # No ConnectPort line: CONNECT is allowed to every port.
        config.write_text(
            "# generated by tests/support/proxies.py\n"
            f"Port {port}\n"
            f"Listen {LOOPBACK}\n"
            "Timeout 600\n"
            f'LogFile "{log}"\n'
            "LogLevel Info\n"
            "MaxClients 100\n"
            f"Allow {LOOPBACK}\n"
            "DisableViaHeader Yes\n"
            f"{filter_lines}"
            f"{extra}"
        )
        # -d: stay in the foreground.
        return _spawn(
            [tinyproxy, "-d", "-c", str(config)],
            name="tinyproxy",
            workdir=workdir,
            port=port,
            logs=[log],
        )

    proc, port = _start_on_free_port(start)
    try:
        yield port
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    """tinyproxy, HTTP CONNECT to any host and port, no authentication."""
    with _tinyproxy(tmp_path_factory, "plain") as port:
        yield RunningProxy("http", LOOPBACK, port, None, None)


@pytest.fixture(scope="session")
def http_auth_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    """tinyproxy with ``BasicAuth``: 407 without credentials, 401 with wrong ones."""
    user, password = "mailwire", "pw-" + secrets.token_hex(8)
    with _tinyproxy(tmp_path_factory, "auth", extra=f"BasicAuth {user} {password}\n") as port:
        yield RunningProxy("http", LOOPBACK, port, user, password)


@pytest.fixture(scope="session")
def http_blocking_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    """tinyproxy, no auth, answering ``403 Filtered`` to CONNECT to BLOCKED_HOST (any port)."""
    rules = "^" + re.escape(BLOCKED_HOST) + "$\n"
    with _tinyproxy(tmp_path_factory, "blocking", filter_rules=rules) as port:
        yield RunningProxy("http", LOOPBACK, port, None, None)


# ---------------------------------------------------------------------------
# OpenSSH dynamic forwarding (ssh -D): SOCKS4a
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def socks4a_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProxy]:
    """SOCKS4a (and plain SOCKS4; SOCKS5 too): OpenSSH's ``ssh -D`` through a private sshd.

    Neither dante nor pproxy resolve SOCKS4a host names (both try to connect to
    the 0.0.0.x placeholder), so this runs a throw-away ``sshd`` on 127.0.0.1
    with its own host key and a key-only login for the current user, and an
    ``ssh -N -D`` client whose dynamic forward is the proxy.  When a target can
    not be reached, ssh closes the client connection without a SOCKS reply.
    """
    sshd = _binary("sshd")
    ssh = _binary("ssh")
    keygen = _binary("ssh-keygen")
    workdir = tmp_path_factory.mktemp("openssh-socks4a")
    user = pwd.getpwuid(os.getuid()).pw_name
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "id_ed25519"
    for key in (host_key, client_key):
        subprocess.run(
            [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "mailwire-test", "-f", str(key)],
            check=True,
            capture_output=True,
        )
    authorized = workdir / "authorized_keys"
    authorized.write_text("restrict,port-forwarding " + client_key.with_suffix(".pub").read_text())
    if _is_root():
        # sshd refuses to start without its privilege-separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    sshd_log = workdir / "sshd.log"
    ssh_log = workdir / "ssh.log"

    def start_sshd(port: int) -> subprocess.Popen[bytes]:
        config = workdir / "sshd_config"
        config.write_text(
            "# generated by tests/support/proxies.py\n"
            f"ListenAddress {LOOPBACK}:{port}\n"
            f"HostKey {host_key}\n"
            f"PidFile {workdir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized}\n"
            "StrictModes no\n"  # the temp dir lives under world-writable /tmp
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "AuthenticationMethods publickey\n"
            "PermitRootLogin prohibit-password\n"
            f"AllowUsers {user}\n"
            "AllowTcpForwarding yes\n"
            "PermitOpen any\n"
            "X11Forwarding no\n"
            "PermitTTY no\n"
            "PrintMotd no\n"
            "LogLevel VERBOSE\n"
        )
        # -D: foreground; -E: log to a file; sshd must be started by absolute path.
        return _spawn(
            [sshd, "-D", "-f", str(config), "-E", str(sshd_log)],
            name="sshd",
            workdir=workdir,
            port=port,
            logs=[sshd_log],
        )

    sshd_proc, sshd_port = _start_on_free_port(start_sshd)
    try:
        host_pub = host_key.with_suffix(".pub").read_text().split()
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[{LOOPBACK}]:{sshd_port} {host_pub[0]} {host_pub[1]}\n")

        def start_ssh(port: int) -> subprocess.Popen[bytes]:
            return _spawn(
                [
                    ssh,
                    "-F", "/dev/null",
                    "-N",
                    "-D", f"{LOOPBACK}:{port}",
                    "-p", str(sshd_port),
                    "-i", str(client_key),
                    "-E", str(ssh_log),
                    "-o", "BatchMode=yes",
                    "-o", "IdentitiesOnly=yes",
                    "-o", "IdentityAgent=none",
                    "-o", "StrictHostKeyChecking=yes",
                    "-o", f"UserKnownHostsFile={known_hosts}",
                    "-o", "GlobalKnownHostsFile=/dev/null",
                    "-o", "ExitOnForwardFailure=yes",
                    "-o", "LogLevel=VERBOSE",
                    f"{user}@{LOOPBACK}",
                ],
                name="ssh",
                workdir=workdir,
                port=port,
                logs=[ssh_log, sshd_log],
            )  # fmt: skip

        ssh_proc, socks_port = _start_on_free_port(start_ssh)
        try:
            yield RunningProxy("socks4a", LOOPBACK, socks_port, None, None)
        finally:
            _stop(ssh_proc)  # first: its sshd session process then exits too
    finally:
        _stop(sshd_proc)
