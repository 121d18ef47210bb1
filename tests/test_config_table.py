"""The table of settings agrees with everything it drives: ``Settings`` fields, client
attributes, ``MAILWIRE_*`` variables and command-line options; and the configuration package
does not import the clients."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import mailwire.config
from mailwire import SmtpClient
from mailwire.config import Settings
from mailwire.config.environment import read_environment
from mailwire.config.table import SETTINGS

FIELDS = {field.name for field in dataclasses.fields(Settings)}


def test_every_direct_setting_is_a_settings_field_and_a_client_attribute() -> None:
    client = SmtpClient("h")
    for setting in SETTINGS:
        if setting.attribute is not None:
            assert setting.key in FIELDS, setting.key
            assert hasattr(client, setting.attribute), setting.attribute


def test_every_setting_has_its_environment_variable() -> None:
    samples = {"port": "25", "security": "none", "timeout": "3", "greeting_timeout": "3",
               "proxy": "socks5://h:1080", "bind": "127.0.0.1", "tls_versions": "TLS12",
               "insecure_skip_verify": "no", "allowed_mechanisms": "PLAIN",
               "allow_plaintext_credentials": "no", "password_command": "true"}
    for setting in SETTINGS:
        layer = read_environment({setting.env: samples.get(setting.key, "x")})
        assert list(layer) == [setting.key]


def test_every_command_line_option_of_the_table_is_offered_by_send() -> None:
    send = subprocess.run([sys.executable, "-m", "mailwire.cli", "send", "--help"],
                          capture_output=True, text=True, check=True).stdout
    for setting in SETTINGS:
        if setting.option is not None:
            assert setting.option.flag in send, setting.option.flag


def test_the_configuration_package_does_not_import_the_clients() -> None:
    clients = {"mailwire.client", "mailwire.async_client", "mailwire.options"}
    package = Path(mailwire.config.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text("utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not clients & set(names), f"{source.name} imports {names}"
