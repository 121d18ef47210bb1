"""The connection options shared by commands, and turning them (with the configuration file and
the environment) into ``Settings`` and a ``SmtpClient``.

Precedence, weakest first: the configuration file, its profile, ``MAILWIRE_*`` variables, the
options given here. The password never has to be on the command line: ``--password-env VAR``,
``--ask-password`` (a prompt), ``MAILWIRE_PASSWORD``, or the configuration's ``password_env`` /
``password_command``; with a user and no password, a terminal is prompted.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mailwire.client import SmtpClient
from mailwire.config import SEARCH_ORDER, Settings, client_from_settings, load_settings
from mailwire.config import values as parse
from mailwire.errors import ConfigError

T = TypeVar("T")


def option_type(parser: Callable[[str], T], name: str) -> Callable[[str], T]:
    """An argparse ``type=`` that reports the config parser's message as the error."""

    def convert(text: str) -> T:
        try:
            return parser(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name
    return convert


PORT = option_type(parse.port, "port")
SECONDS = option_type(parse.seconds, "seconds")
SECURITY = option_type(parse.security, "security")
PROXY = option_type(parse.proxy_url, "proxy")
BIND = option_type(parse.bind_address, "bind")
TLS_VERSIONS = option_type(parse.tls_versions, "tls versions")
MECHANISM = option_type(parse.mechanisms, "mechanism")
FILE = option_type(lambda text: parse.file_path(text, Path.cwd()), "file")

_SETTINGS_OPTIONS = ("host", "port", "security", "timeout", "greeting_timeout", "local_hostname",
                     "proxy", "bind", "tls_versions", "ca_file", "client_certificate",
                     "client_key", "username")


def add_network_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Timeouts, proxy, local address, EHLO name and TLS: what ``send`` and ``probe`` share."""
    group = parser.add_argument_group("network and TLS")
    group.add_argument("--timeout", type=SECONDS, metavar="SECONDS",
                       help="time limit of each phase (default 100; probe: 10)")
    group.add_argument("--greeting-timeout", type=SECONDS, metavar="SECONDS",
                       help="time to wait for the greeting (default 10; probe: 5)")
    group.add_argument("--ehlo-name", dest="local_hostname", metavar="NAME",
                       help="the name to give in EHLO (default: our address literal)")
    group.add_argument("--proxy", type=PROXY, metavar="URL",
                       help="socks5://[user:pass@]host:port, socks5h://, socks4://, socks4a:// "
                            "or http://host:port")
    group.add_argument("--bind", type=BIND, metavar="ADDR[:PORT]",
                       help="the local address to connect from")
    group.add_argument("--tls-versions", type=TLS_VERSIONS, metavar="LIST",
                       help="allowed TLS versions, e.g. TLS12,TLS13")
    group.add_argument("--ca-file", type=FILE, metavar="FILE",
                       help="trust the certificate authorities in this PEM file")
    group.add_argument("--client-cert", dest="client_certificate", type=FILE, metavar="FILE",
                       help="a client certificate (PEM; may include the key)")
    group.add_argument("--client-key", type=FILE, metavar="FILE",
                       help="the client certificate's key (PEM)")
    return group


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Everything ``send`` needs to reach and log in to a server."""
    source = parser.add_argument_group("configuration")
    source.add_argument("--config", metavar="FILE",
                        help="configuration file (default: the first of "
                             f"{', '.join(SEARCH_ORDER)})")
    source.add_argument("--profile", metavar="NAME", help="profile of the configuration file")
    server = parser.add_argument_group("server")
    server.add_argument("--host", help="SMTP server host name or address")
    server.add_argument("--port", type=PORT, help="port (default: 587, or 465 for ssl_implicit)")
    server.add_argument("--security", type=SECURITY, metavar="MODE",
                        help="auto (default), ssl_auto, ssl_explicit (starttls), "
                             "ssl_implicit (tls), none")
    add_network_options(parser).add_argument(
        "--insecure-skip-verify", action="store_true",
        help="DANGEROUS: accept any certificate for any host name")
    auth = parser.add_argument_group("authentication")
    auth.add_argument("--user", dest="username", metavar="NAME", help="the user name to log in as")
    auth.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)
    auth.add_argument("--password-env", metavar="VAR",
                      help="read the password from this environment variable")
    auth.add_argument("--ask-password", action="store_true", help="prompt for the password")
    auth.add_argument("--auth", dest="mechanisms", action="append", type=MECHANISM,
                      metavar="MECH",
                      help="allow this SASL mechanism (repeatable; default: all)")
    auth.add_argument("--allow-plaintext-credentials", action="store_true",
                      help="allow sending the password over an unencrypted connection")


class _RefusePassword(argparse.Action):
    """``--password`` does not exist on purpose; the refusal never repeats what followed it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        parser.error("there is no --password option: a password on the command line shows in "
                     "the process list and the shell history; use --ask-password, "
                     "--password-env VAR or MAILWIRE_PASSWORD")


def settings_from_args(args: argparse.Namespace,
                       environ: dict[str, str] | None = None) -> Settings:
    """The configuration, overridden by the options given on the command line."""
    env = dict(os.environ) if environ is None else environ
    own_password = bool(args.password_env or args.ask_password)
    settings = load_settings(args.config, args.profile, env, resolve_secrets=not own_password)
    changes: dict[str, Any] = {key: getattr(args, key) for key in _SETTINGS_OPTIONS
                               if getattr(args, key, None) is not None}
    if args.mechanisms:
        allowed = args.mechanisms[0]
        for more in args.mechanisms[1:]:
            allowed |= more
        changes["allowed_mechanisms"] = allowed
    if args.insecure_skip_verify:
        changes["insecure_skip_verify"] = True
    if args.allow_plaintext_credentials:
        changes["allow_plaintext_credentials"] = True
    settings = dataclasses.replace(settings, **changes)
    if args.password_env:
        settings = dataclasses.replace(settings, password=_from_env(args.password_env, env),
                                       password_source=f"--password-env {args.password_env}")
    elif args.ask_password or _should_prompt(settings):
        settings = dataclasses.replace(settings, password=_prompt(settings),
                                       password_source="prompt")
    return settings


def client_from_args(settings: Settings) -> SmtpClient:
    if settings.username and settings.password is None and settings.oauth_token is None:
        raise ConfigError(f"user {settings.username!r} has no password: use --ask-password, "
                          "--password-env VAR, MAILWIRE_PASSWORD, or password_env / "
                          "password_command in the configuration file")
    if settings.client_key and not settings.client_certificate:
        raise ConfigError("--client-key needs --client-cert as well")
    return client_from_settings(settings)


def _from_env(name: str, environ: dict[str, str]) -> str:
    value = environ.get(name)
    if not value:
        state = "is empty" if value == "" else "is not set"
        raise ConfigError(f"--password-env: the environment variable {name} {state}")
    return value


def _should_prompt(settings: Settings) -> bool:
    return (bool(settings.username) and settings.password is None
            and settings.oauth_token is None and sys.stdin.isatty())


def _prompt(settings: Settings) -> str:
    who = f"{settings.username or ''}@{settings.host or 'server'}"
    try:
        password = getpass.getpass(f"Password for {who}: ")
    except (EOFError, KeyboardInterrupt):
        raise ConfigError("no password entered") from None
    if not password:
        raise ConfigError("no password entered")
    return password
