"""The one table of settings.

Each row says, for one setting: its configuration key (the same in every file format, and
``MAILWIRE_<KEY>`` in the environment), how a raw value is parsed, the client attribute it
sets, its command-line option, and what a file found by searching may not do with it (see
``mailwire.config.trust``). The loader, the environment reader, ``apply_settings`` and the
command line all read this table, so a setting is added in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailwire.config import values
from mailwire.message.dkim_signer import check_domain, check_selector

ENV_PREFIX = "MAILWIRE_"

Parser = Callable[[object, Path], Any]
"""``(raw value, folder relative paths start from) -> typed value``; ValueError when bad."""


def _plain(parse: Callable[[object], Any]) -> Parser:
    return lambda value, _base: parse(value)


@dataclass(frozen=True, slots=True)
class Option:
    """How a setting appears on the command line (``send``, ``send-many``; ``probe`` takes the
    ``network`` group)."""

    flag: str
    group: str
    """``server``, ``network``, ``authentication``, ``delivery`` or ``dkim``."""
    help: str
    metavar: str | None = None
    switch: bool = False
    """An on/off flag (``--insecure-skip-verify``) rather than one taking a value."""
    repeatable: bool = False
    """Given once per value; the values are combined with ``|``."""


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    parse: Parser
    attribute: str | None = None
    """The client attribute it sets; None for the indirect ways of giving a secret."""
    option: Option | None = None
    secret: str | None = None
    """For ``password``/``password_env``/``password_command`` (and ``oauth_token_*``): the
    secret they give; a source that gives it one way replaces the other ways."""
    refused_when_found: Callable[[Any], str | None] | None = None
    """For a file found by searching: why this value may not come from it, or None."""

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper()


def _runs_a_command(_value: object) -> str:
    return "runs a command"


def _reads_other_variables(name: object) -> str | None:
    if isinstance(name, str) and name.startswith(ENV_PREFIX):
        return None
    return f"reads the environment variable {name} (only {ENV_PREFIX}* variables are allowed)"


def _turns_off_verification(on: object) -> str | None:
    return "turns certificate verification off" if on is True else None


def _allows_plaintext_credentials(on: object) -> str | None:
    return "allows credentials over an unencrypted connection" if on is True else None


def _signs_with_a_private_key(_path: object) -> str:
    return "signs with a private key"


SETTINGS: tuple[Setting, ...] = (
    Setting("host", _plain(values.text), "host",
            Option("--host", "server", "SMTP server host name or address")),
    Setting("port", _plain(values.port), "port",
            Option("--port", "server", "port (default: 587, or 465 for ssl_implicit)")),
    Setting("security", _plain(values.security), "security",
            Option("--security", "server", "auto (default), ssl_auto, ssl_explicit (starttls), "
                   "ssl_implicit (tls), none", metavar="MODE")),
    Setting("timeout", _plain(values.seconds), "timeout",
            Option("--timeout", "network", "time limit of each phase (default 100; probe: 10)",
                   metavar="SECONDS")),
    Setting("greeting_timeout", _plain(values.seconds), "greeting_timeout",
            Option("--greeting-timeout", "network",
                   "time to wait for the greeting (default 10; probe: 5)", metavar="SECONDS")),
    Setting("local_hostname", _plain(values.text), "local_hostname",
            Option("--ehlo-name", "network",
                   "the name to give in EHLO (default: our address literal)", metavar="NAME")),
    Setting("proxy", _plain(values.proxy_url), "proxy",
            Option("--proxy", "network", "socks5://[user:pass@]host:port, socks5h://, "
                   "socks4://, socks4a:// or http://host:port", metavar="URL")),
    Setting("bind", _plain(values.bind_address), "bind_endpoint",
            Option("--bind", "network", "the local address to connect from",
                   metavar="ADDR[:PORT]")),
    Setting("tls_versions", _plain(values.tls_versions), "supported_encryption",
            Option("--tls-versions", "network", "allowed TLS versions, e.g. TLS12,TLS13",
                   metavar="LIST")),
    Setting("ca_file", values.file_path, "ca_file",
            Option("--ca-file", "network",
                   "trust the certificate authorities in this PEM file", metavar="FILE")),
    Setting("ca_path", values.directory_path, "ca_path"),
    Setting("client_certificate", values.file_path, "client_certificate",
            Option("--client-cert", "network",
                   "a client certificate (PEM; may include the key)", metavar="FILE")),
    Setting("client_key", values.file_path, None,
            Option("--client-key", "network", "the client certificate's key (PEM)",
                   metavar="FILE")),
    Setting("insecure_skip_verify", _plain(values.boolean),
            "dangerously_skip_certificate_verification",
            Option("--insecure-skip-verify", "server",
                   "DANGEROUS: accept any certificate for any host name", switch=True),
            refused_when_found=_turns_off_verification),
    Setting("username", _plain(values.text), "username",
            Option("--user", "authentication", "the user name to log in as", metavar="NAME")),
    Setting("password", _plain(values.secret), "password", secret="password"),
    Setting("password_env", _plain(values.text), None,
            Option("--password-env", "authentication",
                   "read the password from this environment variable", metavar="VAR"),
            secret="password", refused_when_found=_reads_other_variables),
    Setting("password_command", _plain(values.command), None, secret="password",
            refused_when_found=_runs_a_command),
    Setting("oauth_token", _plain(values.secret), "oauth_token", secret="oauth_token"),
    Setting("oauth_token_env", _plain(values.text), None, secret="oauth_token",
            refused_when_found=_reads_other_variables),
    Setting("oauth_token_command", _plain(values.command), None, secret="oauth_token",
            refused_when_found=_runs_a_command),
    Setting("allowed_mechanisms", _plain(values.mechanisms), "allowed_authentication",
            Option("--auth", "authentication",
                   "allow this SASL mechanism (repeatable; default: all)", metavar="MECH",
                   repeatable=True)),
    Setting("allow_plaintext_credentials", _plain(values.boolean),
            "allow_plaintext_credentials",
            Option("--allow-plaintext-credentials", "authentication",
                   "allow sending the password over an unencrypted connection", switch=True),
            refused_when_found=_allows_plaintext_credentials),
    Setting("sender", _plain(values.text), "default_sender"),
    Setting("notify", _plain(values.notify), "delivery_notification_options",
            Option("--notify", "delivery", "ask for delivery status notifications: success, "
                   "failure, delay (comma-separated) or never", metavar="WHEN")),
    Setting("dsn_return", _plain(values.dsn_return), "dsn_return",
            Option("--ret", "delivery", "what a failure report carries: full or headers",
                   metavar="WHAT")),
    Setting("require_dsn", _plain(values.boolean), "require_dsn"),
    Setting("delivery_method", _plain(values.delivery_method), "delivery_method",
            Option("--delivery-method", "delivery", "network (default) or "
                   "specified_pickup_directory", metavar="HOW")),
    Setting("pickup_directory", values.directory_path, "pickup_directory_location",
            Option("--pickup-dir", "delivery", "with --delivery-method "
                   "specified_pickup_directory: write .eml files here", metavar="DIR")),
    # The three together make the client's dkim_signer (mailwire.config.apply).
    Setting("dkim_key", values.file_path, None,
            Option("--dkim-key", "dkim", "sign each message with DKIM using this private key "
                   "(PEM, RSA or Ed25519)", metavar="FILE"),
            refused_when_found=_signs_with_a_private_key),
    Setting("dkim_selector", _plain(check_selector), None,
            Option("--dkim-selector", "dkim", "the DKIM selector (s=) of that key",
                   metavar="SELECTOR")),
    Setting("dkim_domain", _plain(check_domain), None,
            Option("--dkim-domain", "dkim", "the DKIM signing domain (d=)", metavar="DOMAIN")),
)

BY_KEY: dict[str, Setting] = {setting.key: setting for setting in SETTINGS}


def secret_slots() -> dict[str, tuple[str, ...]]:
    """``{"password": ("password", "password_env", "password_command"), "oauth_token": ...}``."""
    slots: dict[str, tuple[str, ...]] = {}
    for setting in SETTINGS:
        if setting.secret is not None:
            slots[setting.secret] = (*slots.get(setting.secret, ()), setting.key)
    return slots


def option_names() -> dict[str, str]:
    """Client attribute -> command-line option, to name options rather than Python names in
    the command line's messages."""
    return {setting.attribute: setting.option.flag for setting in SETTINGS
            if setting.attribute is not None and setting.option is not None}
