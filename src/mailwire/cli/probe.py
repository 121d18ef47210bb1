"""``mailwire probe HOST[:PORT]``: how a server can be reached, the way an administrator asks.

Each security mode (NONE, SSL_EXPLICIT, SSL_IMPLICIT) is tried on its own connection, in
parallel: which work and why the others fail, the greeting, the EHLO extensions and AUTH
mechanisms before TLS (from the NONE connection) and after it, the TLS version and cipher, the
certificate (subject, issuer, validity, names, host-name match, trust) and the time each phase
took. Without a port, NONE and SSL_EXPLICIT use 587 and SSL_IMPLICIT 465.

A certificate that fails verification does not hide the rest: the verifying connection's error
is kept, and a second connection without verification gathers the details. Probing never logs
in. Exit status 0 when at least one mode works, 3 when none does.
"""

from __future__ import annotations

import argparse
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from mailwire.cli import probe_report
from mailwire.cli.certificate import CertificateSummary, summarize
from mailwire.cli.connection import add_network_options, option_type
from mailwire.cli.exit_codes import ExitCode
from mailwire.cli.probe_timing import PhaseTimings, TimedClient
from mailwire.cli.progress import progress
from mailwire.config import values
from mailwire.errors import SmtpError, SmtpSecurityError, SmtpTimeoutError, TlsNotSpokenError
from mailwire.results import ConnectionInfo
from mailwire.security import IMPLICIT_TLS_PORT, SUBMISSION_PORT, SecurityOptions
from mailwire.transport.proxy import redact_url
from mailwire.transport.tls import EncryptionProtocols

MODES = (SecurityOptions.NONE, SecurityOptions.SSL_EXPLICIT, SecurityOptions.SSL_IMPLICIT)
PROBE_EPILOG = """\
exit status:
  0    at least one security mode works (the report says which, and why the others fail)
  1    any other error
  2    usage error (a bad option or target)
  3    no security mode works
  130  interrupted (Ctrl-C)
"""
PROBE_TIMEOUT = 10.0
PROBE_GREETING_TIMEOUT = 5.0


@dataclass(slots=True)
class ModeResult:
    """What one security mode gave."""

    mode: SecurityOptions
    port: int
    ok: bool = False
    error: str | None = None
    error_type: str | None = None
    hint: str | None = None
    greeting: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    auth_mechanisms: tuple[str, ...] = ()
    tls_version: str | None = None
    cipher: str | None = None
    certificate: CertificateSummary | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    host: str
    port: int | None
    timeout: float
    greeting_timeout: float
    proxy: str | None = None
    bind: tuple[str, int] | None = None
    local_hostname: str | None = None
    ca_file: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    tls_versions: EncryptionProtocols | None = None

    def port_for(self, mode: SecurityOptions) -> int:
        if self.port is not None:
            return self.port
        return IMPLICIT_TLS_PORT if mode is SecurityOptions.SSL_IMPLICIT else SUBMISSION_PORT


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser],
               parent: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "probe", parents=[parent], allow_abbrev=False,
        help="diagnose a server: security modes, TLS, certificate",
        description=__doc__.split("\n\n", 1)[1].replace("``", "") if __doc__ else None,
        epilog=PROBE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", metavar="HOST[:PORT]", type=option_type(parse_target, "target"),
                        help="the server; without a port, 587 (and 465 for implicit TLS)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    add_network_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    host, port = args.target
    target = ProbeTarget(
        host=host, port=port,
        timeout=args.timeout or PROBE_TIMEOUT,
        greeting_timeout=args.greeting_timeout or min(PROBE_GREETING_TIMEOUT,
                                                      args.timeout or PROBE_TIMEOUT),
        proxy=args.proxy, bind=args.bind, local_hostname=args.local_hostname,
        ca_file=args.ca_file, client_certificate=args.client_certificate,
        client_key=args.client_key, tls_versions=args.tls_versions,
    )
    label = f"probing {host}" + (f":{port}" if port else "")
    with progress(label, enabled=not args.verbose and not args.json):
        results = probe(target, parallel=not args.verbose)
    if args.json:
        print(probe_report.as_json(target.host, redact_url(target.proxy or "") or None, results))
    else:
        print(probe_report.as_text(target.host, target.proxy and redact_url(target.proxy),
                                   results))
    return ExitCode.OK if any(result.ok for result in results) else ExitCode.CONNECTION


def parse_target(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    try:
        host, port = values.bind_address(text)
    except ValueError:
        if text.count(":") > 1:
            return text, None
        raise
    return host, port or None


def probe(target: ProbeTarget, *, parallel: bool = True) -> list[ModeResult]:
    """Every mode's result, in ``MODES`` order.

    When every mode meets the same port, implicit TLS is tried first and the plaintext modes
    learn from it, so that any port is probed in about one greeting wait: a port that completes
    a TLS handshake speaks implicit TLS (the plaintext modes would only wait out the greeting);
    one that answers the handshake with plaintext after longer than the greeting wait has a
    server that greets late, and the plaintext modes then wait that long.
    """
    if len({target.port_for(mode) for mode in MODES}) > 1:
        return _each(target, MODES, parallel)
    implicit = probe_mode(target, SecurityOptions.SSL_IMPLICIT)
    plaintext = (SecurityOptions.NONE, SecurityOptions.SSL_EXPLICIT)
    port = target.port_for(SecurityOptions.NONE)
    if implicit.ok:
        return [*(ModeResult(mode, port, error="not tried: the port completed a TLS "
                             "handshake, so it speaks implicit TLS", error_type="NotTried")
                  for mode in plaintext), implicit]
    late = _greeted_late(implicit, target)
    if late is None:
        return [*_each(target, plaintext, parallel), implicit]
    patient = replace(target, greeting_timeout=min(target.timeout, late + 2.0))
    results = _each(patient, plaintext, parallel)
    advice = (f"the server greets only after {late:.1f} s, later than the greeting wait "
              f"({target.greeting_timeout:g} s): use --greeting-timeout above {late:.0f} s")
    implicit.hint = (f"answered the TLS handshake with plaintext after {late:.1f} s: the "
                     "greeting of a server that greets late, not TLS")
    for result in results:
        result.hint = advice if result.ok or result.hint is None else f"{result.hint}; {advice}"
    return [*results, implicit]


def _each(target: ProbeTarget, modes: tuple[SecurityOptions, ...],
          parallel: bool) -> list[ModeResult]:
    if not parallel or len(modes) == 1:
        return [probe_mode(target, mode) for mode in modes]
    with ThreadPoolExecutor(max_workers=len(modes)) as pool:
        return list(pool.map(lambda mode: probe_mode(target, mode), modes))


def _greeted_late(implicit: ModeResult, target: ProbeTarget) -> float | None:
    """How long the server took to answer the TLS handshake in plaintext, when that was
    longer than the greeting wait: its greeting came late."""
    if implicit.error_type != "TlsNotSpokenError":
        return None
    seconds = implicit.timings_ms.get("tls_handshake", 0.0) / 1000
    return seconds if seconds > target.greeting_timeout else None


def probe_mode(target: ProbeTarget, mode: SecurityOptions) -> ModeResult:
    result = ModeResult(mode, target.port_for(mode))
    timings = PhaseTimings()
    verify_error: str | None = None
    try:
        try:
            info = _connect(target, mode, timings, verify=True)
        except SmtpSecurityError as error:
            verify_error = certificate_failure(error)
            if verify_error is None:
                raise
            timings = PhaseTimings()
            info = _connect(target, mode, timings, verify=False)
    except SmtpError as error:
        result.error = str(error)
        result.error_type = type(error).__name__
        result.hint = explain(error, mode, target)
        result.timings_ms = timings.milliseconds()
        return result
    result.ok = True
    result.greeting = info.greeting.describe()
    result.extensions = dict(info.capabilities.extensions)
    result.auth_mechanisms = info.capabilities.auth_mechanisms
    result.tls_version, result.cipher = info.tls_version, info.cipher
    if info.peer_certificate is not None:
        result.certificate = summarize(info.peer_certificate, target.host, verify_error)
    result.timings_ms = timings.milliseconds()
    return result


def _connect(target: ProbeTarget, mode: SecurityOptions, timings: PhaseTimings,
             *, verify: bool) -> ConnectionInfo:
    client = TimedClient(target.host, target.port_for(mode), security=mode,
                         timeout=target.timeout, greeting_timeout=target.greeting_timeout,
                         local_hostname=target.local_hostname, proxy=target.proxy,
                         bind_endpoint=target.bind, ca_file=target.ca_file,
                         dangerously_skip_certificate_verification=not verify)
    if target.client_certificate:
        client.client_certificate = ((target.client_certificate, target.client_key)
                                     if target.client_key else target.client_certificate)
    if target.tls_versions is not None:
        client.supported_encryption = target.tls_versions
    client.timings = timings
    with client:
        return client.connect()


def certificate_failure(error: SmtpSecurityError) -> str | None:
    """The verification error when ``error`` is a certificate that failed verification."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return str(cause.verify_message or cause.reason or cause)
        cause = cause.__cause__ or cause.__context__
    return None


def explain(error: SmtpError, mode: SecurityOptions, target: ProbeTarget) -> str | None:
    """A likely reason, in an administrator's words."""
    if isinstance(error, TlsNotSpokenError):
        return "this port speaks plaintext SMTP first: try SSL_EXPLICIT (STARTTLS) here"
    if isinstance(error, SmtpTimeoutError) and error.phase == "greeting":
        if mode is SecurityOptions.SSL_IMPLICIT:
            return "TLS was set up but no greeting followed: the server is slow or not SMTP"
        return ("no greeting: the server may expect implicit TLS on this port "
                "(try SSL_IMPLICIT), or it is slow")
    if "does not offer STARTTLS" in str(error):
        return "the server offers no STARTTLS on this port"
    if _caused_by(error, ConnectionRefusedError):
        return f"nothing listens on {target.host}:{target.port_for(mode)}"
    return None


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, kind):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
