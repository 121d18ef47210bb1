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
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from mailwire.cli import password_input
from mailwire.client import SmtpClient
from mailwire.config import SEARCH_ORDER, Settings, load_settings, require_host
from mailwire.config.table import BY_KEY, SETTINGS, Setting
from mailwire.errors import ConfigError

T = TypeVar("T")
_log = logging.getLogger("mailwire.cli")


def option_type(parser: Callable[[str], T], name: str) -> Callable[[str], T]:
    """An argparse ``type=`` that reports the config parser's message as the error."""

    def convert(text: str) -> T:
        try:
            return parser(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name
    return convert


def _value_type(setting: Setting) -> Callable[[str], Any]:
    """The argparse ``type=`` of a setting: its configuration parser, paths from the cwd."""
    return option_type(lambda text: setting.parse(text, Path.cwd()),
                       setting.key.replace("_", " "))


PORT = _value_type(BY_KEY["port"])
SECONDS = _value_type(BY_KEY["timeout"])
FILE = _value_type(BY_KEY["ca_file"])
NETWORK_GROUP = "network"


def add_network_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Timeouts, proxy, local address, EHLO name and TLS: what ``send`` and ``probe`` share."""
    group = parser.add_argument_group("network and TLS")
    _add_group(group, NETWORK_GROUP)
    return group


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Everything ``send`` needs to reach and log in to a server."""
    source = parser.add_argument_group("configuration")
    source.add_argument("--config", metavar="FILE",
                        help="configuration file (default: the first of "
                             f"{', '.join(SEARCH_ORDER)})")
    source.add_argument("--profile", metavar="NAME", help="profile of the configuration file")
    _add_group(parser.add_argument_group("server"), "server")
    add_network_options(parser)
    auth = parser.add_argument_group("authentication")
    _add_group(auth, "authentication")
    auth.add_argument("--password", nargs="?", action=RefusePassword, help=argparse.SUPPRESS)
    auth.add_argument("--ask-password", action="store_true",
                      help="prompt for the password (or read the first line of standard "
                           "input when it is not a terminal)")
    _add_group(parser.add_argument_group("delivery status notifications"), "delivery")
    _add_group(parser.add_argument_group("DKIM signing"), "dkim")


def _add_group(group: argparse._ArgumentGroup, name: str) -> None:
    for setting in SETTINGS:
        option = setting.option
        if option is None or option.group != name:
            continue
        if option.switch:
            group.add_argument(option.flag, dest=setting.key, action="store_true",
                               help=option.help)
        else:
            group.add_argument(option.flag, dest=setting.key, metavar=option.metavar,
                               type=_value_type(setting), help=option.help,
                               action="append" if option.repeatable else "store")


class RefusePassword(argparse.Action):
    """``--password`` does not exist on purpose; the refusal never repeats what followed it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        parser.error("there is no --password option: a password on the command line shows in "
                     "the process list and the shell history; use --ask-password or "
                     "--password-env VAR")


def settings_from_args(args: argparse.Namespace,
                       environ: Mapping[str, str] | None = None) -> Settings:
    """The configuration, overridden by the options given on the command line; no secret is
    resolved yet (``client_from_args`` does, when it is needed)."""
    env = os.environ if environ is None else environ
    settings = load_settings(args.config, args.profile, env, resolve_secrets=False)
    changes: dict[str, Any] = {}
    for setting in SETTINGS:
        given = getattr(args, setting.key, None)
        if setting.option is None or setting.secret is not None or given in (None, False, []):
            continue
        if setting.option.repeatable:
            combined = given[0]
            for more in given[1:]:
                combined |= more
            given = combined
        changes[setting.key] = given
    args.configuration = settings.source_description
    if args.password_env:
        changes["password_source"] = f"--password-env {args.password_env}"
    elif args.ask_password:
        changes["password_source"] = "prompt"
    return dataclasses.replace(settings, **changes)


def client_from_args(args: argparse.Namespace, settings: Settings,
                     environ: Mapping[str, str] | None = None) -> SmtpClient:
    """The client; the password is looked for only now, and only if a user name is set (or
    ``--password-env``/``--ask-password`` ask for it)."""
    env = os.environ if environ is None else environ
    require_host(settings)
    if settings.client_key and not settings.client_certificate:
        raise ConfigError("--client-key needs --client-cert as well")
    if args.password_env:
        settings = dataclasses.replace(settings, password=_from_env(args.password_env, env))
    elif args.ask_password:
        settings = dataclasses.replace(settings, password=_prompt(settings))
    else:
        settings = settings.with_secrets()
        if _should_prompt(settings):
            settings = dataclasses.replace(settings, password=_prompt(settings),
                                           password_source="prompt")
    if settings.username and settings.password is None and settings.oauth_token is None:
        raise ConfigError(f"user {settings.username!r} has no password: use --ask-password, "
                          "--password-env VAR, MAILWIRE_PASSWORD, or password_env / "
                          "password_command in the configuration file")
    client = SmtpClient.from_settings(settings)
    if (settings.timeout is not None and settings.greeting_timeout is None
            and settings.timeout < client.greeting_timeout):
        # --timeout 5 means no wait longer than 5 s: the greeting's included
        client.greeting_timeout = settings.timeout
    return client


def _from_env(name: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name)
    if not value:
        state = "is empty" if value == "" else "is not set"
        raise ConfigError(f"--password-env: the environment variable {name} {state}")
    return value


def _should_prompt(settings: Settings) -> bool:
    return (bool(settings.username) and settings.password is None
            and settings.oauth_token is None and sys.stdin.isatty())


def _prompt(settings: Settings) -> str:
    return password_input.ask(f"Password for {settings.username or ''}@"
                              f"{settings.host or 'server'}: ")


def announce_connection(client: SmtpClient) -> None:
    """Say on ``-v`` what the command is about to wait for (a silent host shows nothing else
    until a time limit ends)."""
    where = f"{client.host}:{client.effective_port}"
    via = f" through the {client.proxy.describe()}" if client.proxy else ""
    _log.info("connecting to %s%s (up to %g s each for connecting and for TLS), then waiting "
              "up to %g s for its greeting ...", where, via, client.timeout,
              client.greeting_timeout)
