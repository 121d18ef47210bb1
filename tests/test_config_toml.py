"""``load_settings`` from mailwire.toml and pyproject.toml: keys, profiles, environment override,
the search order, and a ConfigError naming file, line and key for every bad input."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from mailwire import ConfigError, EncryptionProtocols, SecurityOptions, SmtpKnownAuthenticationType
from mailwire.config import SEARCH_ORDER, Settings, load_settings

FULL = """\
host = "smtp.example.com"
port = 2525
username = "me@example.com"
password = "top-secret"
security = "starttls"
timeout = 30
greeting_timeout = 2.5
local_hostname = "client.example.com"
sender = "Me <me@example.com>"
proxy = "socks5h://puser:ppass@proxy.example:1080"
bind = "127.0.0.1:0"
tls_versions = ["TLS12", "tlsv1.3"]
ca_file = "ca.pem"
insecure_skip_verify = false
allowed_mechanisms = ["SCRAM-SHA-256", "plain"]
allow_plaintext_credentials = true
"""


def write(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(content), "utf-8")
    path.chmod(0o600)  # some hold a password: world-readable would warn
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder, and no user configuration file."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(path: Path | None = None, profile: str | None = None,
         environ: dict[str, str] | None = None, folder: Path | None = None) -> Settings:
    env = {"XDG_CONFIG_HOME": str(folder / "xdg")} if folder else {}
    return load_settings(path, profile, {**env, **(environ or {})})


def error_of(path: Path | None = None, profile: str | None = None,
             environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, profile, environ or {})
    return str(caught.value)


def test_every_key_is_read_and_typed(folder: Path) -> None:
    (folder / "ca.pem").write_text("not checked here")
    settings = load(write(folder, "mailwire.toml", FULL))
    assert settings.host == "smtp.example.com"
    assert settings.port == 2525
    assert settings.username == "me@example.com"
    assert settings.password == "top-secret"
    assert settings.security is SecurityOptions.SSL_EXPLICIT
    assert settings.timeout == 30.0
    assert settings.greeting_timeout == 2.5
    assert settings.local_hostname == "client.example.com"
    assert settings.sender == "Me <me@example.com>"
    assert settings.proxy == "socks5h://puser:ppass@proxy.example:1080"
    assert settings.bind == ("127.0.0.1", 0)
    assert settings.tls_versions == EncryptionProtocols.TLS12 | EncryptionProtocols.TLS13
    assert settings.ca_file == str(folder / "ca.pem")
    assert settings.insecure_skip_verify is False
    assert settings.allowed_mechanisms == (SmtpKnownAuthenticationType.SCRAM_SHA_256
                                           | SmtpKnownAuthenticationType.PLAIN)
    assert settings.allow_plaintext_credentials is True
    assert settings.source == folder / "mailwire.toml"


def test_repr_hides_the_password_and_proxy_credentials(folder: Path) -> None:
    (folder / "ca.pem").write_text("")
    shown = repr(load(write(folder, "mailwire.toml", FULL)))
    assert "top-secret" not in shown
    assert "ppass" not in shown and "puser" not in shown
    assert "<redacted>" in shown


def test_relative_paths_are_relative_to_the_file_not_the_current_folder(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "certs").mkdir()
    (elsewhere / "certs" / "ca.pem").write_text("")
    path = write(elsewhere, "mailwire.toml", 'host = "h"\nca_file = "certs/ca.pem"\n')
    assert load(path).ca_file == str(elsewhere / "certs" / "ca.pem")


def test_profiles_inherit_the_top_level_and_the_default_profile_applies(folder: Path) -> None:
    path = write(folder, "mailwire.toml", """\
        host = "smtp.example.com"
        username = "me"
        timeout = 20
        profile = "work"

        [profiles.work]
        host = "mail.work.example"
        security = "ssl_implicit"

        [profiles.home]
        port = 2525
        """)
    work = load(path)
    assert (work.profile, work.host, work.security, work.username, work.timeout) == (
        "work", "mail.work.example", SecurityOptions.SSL_IMPLICIT, "me", 20.0)
    home = load(path, "home")
    assert (home.profile, home.host, home.port, home.security) == (
        "home", "smtp.example.com", 2525, None)
    assert load(path, environ={"MAILWIRE_PROFILE": "home"}).profile == "home"


def test_a_profile_password_replaces_any_other_way_of_giving_it(folder: Path) -> None:
    path = write(folder, "mailwire.toml", """\
        host = "h"
        username = "u"
        password_command = ["false"]

        [profiles.p]
        password_env = "PROFILE_PASSWORD"
        """)
    settings = load(path, "p", {"PROFILE_PASSWORD": "from-env"})
    assert settings.password == "from-env"
    assert settings.password_source == f"{path}:6: [profiles.p] password_env"


def test_environment_overrides_the_file_and_profile(folder: Path) -> None:
    path = write(folder, "mailwire.toml", """\
        host = "h"
        port = 25
        password = "file-password"
        [profiles.p]
        port = 26
        """)
    settings = load(path, "p", {"MAILWIRE_PORT": "587", "MAILWIRE_PASSWORD": "env-password",
                                "MAILWIRE_SECURITY": "ssl-auto",
                                "MAILWIRE_TLS_VERSIONS": "TLS13",
                                "MAILWIRE_ALLOWED_MECHANISMS": "plain,login",
                                "MAILWIRE_ALLOW_PLAINTEXT_CREDENTIALS": "yes",
                                "MAILWIRE_USERNAME": ""})
    assert settings.port == 587
    assert settings.password == "env-password"
    assert settings.password_source == "environment variable MAILWIRE_PASSWORD"
    assert settings.security is SecurityOptions.SSL_AUTO
    assert settings.tls_versions == EncryptionProtocols.TLS13
    assert settings.allowed_mechanisms == (SmtpKnownAuthenticationType.PLAIN
                                           | SmtpKnownAuthenticationType.LOGIN)
    assert settings.allow_plaintext_credentials is True
    assert settings.username is None


def test_environment_alone_is_enough(folder: Path) -> None:
    settings = load(environ={"MAILWIRE_HOST": "smtp.example.com", "MAILWIRE_PORT": "465"},
                    folder=folder)
    assert (settings.host, settings.port, settings.source) == ("smtp.example.com", 465, None)


def test_pyproject_tool_table_with_profiles(folder: Path) -> None:
    write(folder, "pyproject.toml", """\
        [project]
        name = "x"

        [tool.mailwire]
        host = "smtp.example.com"

        [tool.mailwire.profiles.ci]
        port = 1025
        security = "none"
        """)
    settings = load(profile="ci", folder=folder)
    assert (settings.host, settings.port, settings.security) == (
        "smtp.example.com", 1025, SecurityOptions.NONE)
    assert settings.source == folder / "pyproject.toml"


def test_search_order(folder: Path) -> None:
    user_folder = folder / "xdg" / "mailwire"
    user_folder.mkdir(parents=True)
    write(user_folder, "config.toml", 'host = "user-file"\n')
    assert load(folder=folder).host == "user-file"
    (folder / "web.config").write_text(
        '<configuration><system.net><mailSettings><smtp><network host="web-config"/>'
        "</smtp></mailSettings></system.net></configuration>")
    assert load(folder=folder).host == "web-config"
    (folder / "app.config").write_text(
        (folder / "web.config").read_text().replace("web-config", "app-config"))
    assert load(folder=folder).host == "app-config"
    write(folder, "pyproject.toml", '[project]\nname = "no tool table"\n')
    assert load(folder=folder).host == "app-config"
    write(folder, "pyproject.toml", '[tool.mailwire]\nhost = "pyproject"\n')
    assert load(folder=folder).host == "pyproject"
    write(folder, "mailwire.toml", 'host = "mailwire-toml"\n')
    assert load(folder=folder).host == "mailwire-toml"
    named = write(folder / "xdg", "named.toml", 'host = "named"\n')
    assert load(environ={"MAILWIRE_CONFIG": str(named)}, folder=folder).host == "named"
    assert load(named, folder=folder).host == "named"
    assert SEARCH_ORDER[0] == "$MAILWIRE_CONFIG"


# -- every bad input is a ConfigError naming where and what ------------------------------------


def test_malformed_toml_names_file_and_line(folder: Path) -> None:
    path = write(folder, "mailwire.toml", 'host = "h"\nport = \n')
    message = error_of(path)
    assert str(path) in message
    assert "malformed TOML" in message
    assert "line 2" in message


def test_port_not_a_number_names_file_line_and_key(folder: Path) -> None:
    path = write(folder, "mailwire.toml", 'host = "h"\n\n[profiles.p]\nport = "smtp"\n')
    message = error_of(path, "p")
    assert message == (f"{path}:4: [profiles.p] port: expected a port number 1-65535, "
                       "got 'smtp'")


@pytest.mark.parametrize("value", ["0", "70000", "true", "2.5", "[25]"])
def test_bad_ports(folder: Path, value: str) -> None:
    path = write(folder, "mailwire.toml", f"port = {value}\n")
    assert error_of(path).startswith(f"{path}:1: port: expected a port number")


def test_unknown_security_mode(folder: Path) -> None:
    path = write(folder, "mailwire.toml", 'host = "h"\nsecurity = "startls"\n')
    message = error_of(path)
    assert message.startswith(f"{path}:2: security: unknown security mode 'startls'")
    assert "did you mean 'starttls'?" in message


def test_unknown_key_suggests_the_right_one(folder: Path) -> None:
    path = write(folder, "mailwire.toml", 'host = "h"\nusername = "u"\npasword = "x"\n')
    assert error_of(path) == f"{path}:3: pasword: unknown key (did you mean 'password'?)"


def test_unknown_key_in_an_unused_profile_is_still_an_error(folder: Path) -> None:
    path = write(folder, "mailwire.toml", '[profiles.a]\nhost = "h"\n[profiles.b]\nhots = "h"\n')
    assert error_of(path, "a") == f"{path}:4: [profiles.b] hots: unknown key (did you mean 'host'?)"


def test_unknown_profile_lists_the_profiles(folder: Path) -> None:
    path = write(folder, "mailwire.toml", '[profiles.work]\nhost = "h"\n[profiles.home]\n')
    assert error_of(path, "wrok") == (f"{path}: no profile 'wrok' (did you mean 'work'?); "
                                      "profiles: home, work")
    assert "asked for by MAILWIRE_PROFILE" in error_of(path, environ={"MAILWIRE_PROFILE": "x"})


def test_default_profile_that_does_not_exist(folder: Path) -> None:
    path = write(folder, "mailwire.toml", 'profile = "gone"\n[profiles.here]\n')
    assert f"(asked for by {path}:1: profile)" in error_of(path)


def test_profile_without_any_file(folder: Path) -> None:
    message = error_of(None, "work", {"XDG_CONFIG_HOME": str(folder / "xdg")})
    assert message.startswith("profile 'work': no configuration file was found (searched: ")


@pytest.mark.parametrize(("line", "problem"), [
    ('timeout = "soon"', "timeout: expected a number of seconds, got 'soon'"),
    ("timeout = -1", "timeout: expected a positive number of seconds, got -1"),
    ('tls_versions = ["TLS14"]', "tls_versions: unknown TLS version 'TLS14'"),
    ('allowed_mechanisms = ["PLAN"]', "allowed_mechanisms: unknown authentication mechanism "
                                      "'PLAN' (did you mean 'PLAIN'?)"),
    ('proxy = "ftp://proxy:21"', "proxy: not a proxy URL"),
    ('bind = "[::1"', "bind: expected host[:port] or [IPv6][:port]"),
    ('bind = "host:http"', "bind: expected a port number 1-65535, got 'http'"),
    ('insecure_skip_verify = "maybe"', "insecure_skip_verify: expected true or false"),
    ('ca_file = "missing.pem"', "ca_file: no such file: "),
    ('host = ["a", "b"]', "host: expected a string, got a list"),
    ('host = "evil\\r\\nRCPT TO:<x>"', "host: control characters"),
    ('password = "x"\npassword_env = "Y"', "password_env: conflicts with "),
    ('client_key = "mailwire.toml"', "client_key: needs client_certificate as well"),
    ("[profiles.p]\nprofile = 'x'", "[profiles.p] profile: 'profile' belongs at the top level"),
    ("profiles = 3", "profiles: expected tables [profiles.NAME]"),
])
def test_bad_values(folder: Path, line: str, problem: str) -> None:
    path = write(folder, "mailwire.toml", line + "\n")
    message = error_of(path, "p" if "[profiles.p]" in line else None)
    assert message.startswith(f"{path}:"), message
    assert problem in message


def test_a_bad_proxy_url_error_hides_its_credentials(folder: Path) -> None:
    path = write(folder, "mailwire.toml", 'proxy = "ftp://user:hunter2@proxy:21"\n')
    assert "hunter2" not in error_of(path)


def test_bad_environment_variables(folder: Path) -> None:
    assert error_of(environ={"MAILWIRE_PORT": "x25"}) == (
        "environment variable MAILWIRE_PORT: expected a port number 1-65535, got 'x25'")
    assert error_of(environ={"MAILWIRE_PASWORD": "x"}) == (
        "environment variable MAILWIRE_PASWORD: unknown setting "
        "(did you mean 'MAILWIRE_PASSWORD'?)")


def test_named_file_that_does_not_exist(folder: Path) -> None:
    assert error_of(folder / "nope.toml") == f"{folder / 'nope.toml'}: no such file"
    assert error_of(environ={"MAILWIRE_CONFIG": str(folder / "gone.toml")}) == (
        f"environment variable MAILWIRE_CONFIG: no such file: {folder / 'gone.toml'}")


def test_pyproject_without_tool_table_named_explicitly(folder: Path) -> None:
    path = write(folder, "pyproject.toml", '[project]\nname = "x"\n')
    assert error_of(path) == f"{path}: has no [tool.mailwire] table"


def test_file_that_is_not_utf8(folder: Path) -> None:
    path = folder / "mailwire.toml"
    path.write_bytes(b'host = "\xff"\n')
    assert error_of(path) == f"{path}: not UTF-8 (byte 8)"


@pytest.mark.parametrize("nesting", ["[" * 50_000, "{a = " * 50_000], ids=["arrays", "tables"])
def test_deeply_nested_toml_is_a_config_error(folder: Path, nesting: str) -> None:
    """Not a RecursionError (SECURITY.md, "Hostile configuration files")."""
    path = write(folder, "mailwire.toml", f"host = {nesting}\n")
    assert error_of(path) == f"{path}: malformed TOML: arrays or tables nested too deeply"


def test_a_huge_file_is_refused_before_it_is_parsed(folder: Path) -> None:
    path = folder / "mailwire.toml"
    path.write_text(f'host = "{"h" * (2 * 1024 * 1024)}"\n')
    started = time.monotonic()
    assert error_of(path) == (f"{path}: larger than 1024 KiB; a configuration file holds a few "
                              "settings")
    assert time.monotonic() - started < 1


def test_username_false_in_a_profile_drops_the_inherited_credentials(folder: Path) -> None:
    path = write(folder, "mailwire.toml", """\
        host = "smtp.example.com"
        username = "me"
        password_env = "SMTP_PASSWORD"

        [profiles.relay]
        host = "relay.internal"
        security = "none"
        username = false

        [profiles.other_user]
        username = "you"
        """)
    relay = load(path, "relay", {"SMTP_PASSWORD": "pw"}, folder)
    assert (relay.host, relay.username, relay.password) == ("relay.internal", None, None)
    assert relay.password_source is None
    assert load(path, "other_user", {"SMTP_PASSWORD": "pw"}, folder).password == "pw"
    again = load(path, "relay", {"SMTP_PASSWORD": "pw", "MAILWIRE_USERNAME": "env-user",
                                 "MAILWIRE_PASSWORD": "env-pw"}, folder)
    assert (again.username, again.password) == ("env-user", "env-pw")


def test_username_false_with_a_password_in_the_same_table_is_an_error(folder: Path) -> None:
    path = write(folder, "mailwire.toml", 'host = "h"\n[profiles.p]\nusername = false\n'
                 'password = "x"\n')
    assert error_of(path, "p") == (f"{path}:4: [profiles.p] password: conflicts with "
                                   f"{path}:3: [profiles.p] username: username = false means "
                                   "no login, so no password or token")
