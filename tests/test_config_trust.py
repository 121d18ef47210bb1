"""Configuration found by searching is not trusted like a file the user named (SECURITY.md,
"Configuration found by searching").

A file of the current folder may not run commands, read environment variables other than
MAILWIRE_*, turn certificate verification off or allow plaintext credentials; a file found by
searching that another user owns or may write is refused; which file was used is logged;
secrets are resolved only when an operation uses them; turning verification off always warns
and shows in the repr; a world-readable file holding a password warns.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire import ConfigError, SmtpClient
from mailwire.config import load_settings
from mailwire.devserver import DevServer
from mailwire.warning_categories import InsecureSettingWarning
from tests.support.cli import assert_one_error_line, cli_env, run_cli

StartServer = Callable[..., DevServer]
NOBODY = 65534


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder: a project checkout someone else may have written."""
    project = tmp_path / "checkout"
    project.mkdir()
    monkeypatch.chdir(project)
    return project


def environ(folder: Path, **extra: str) -> dict[str, str]:
    """No user configuration file unless a test writes one under ``xdg``."""
    return {"XDG_CONFIG_HOME": str(folder.parent / "xdg"), **extra}


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, "utf-8")
    path.chmod(mode)
    return path


def marker_command(marker: Path) -> str:
    """A TOML list: a program that leaves ``marker`` behind and prints a password."""
    code = f"open({str(marker)!r}, 'w').close(); print('from-command')"
    return json.dumps([sys.executable, "-c", code])


def refused(folder: Path, **extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ(folder, **extra))
    return str(caught.value)


# -- what a file of the current folder may not say ---------------------------------------------

@pytest.mark.parametrize(("line", "reason"), [
    ('password_env = "CI_DEPLOY_TOKEN"', "reads the environment variable CI_DEPLOY_TOKEN"),
    ('oauth_token_env = "GITHUB_TOKEN"', "reads the environment variable GITHUB_TOKEN"),
    ('oauth_token_command = ["true"]', "runs a command"),
    ("insecure_skip_verify = true", "turns certificate verification off"),
    ('insecure_skip_verify = "yes"', "turns certificate verification off"),
    ("allow_plaintext_credentials = true", "allows credentials over an unencrypted connection"),
])
def test_a_found_file_may_not_weaken_anything(folder: Path, line: str, reason: str) -> None:
    path = write(folder / "mailwire.toml", f'host = "h"\nusername = "u"\n{line}\n')
    message = refused(folder, CI_DEPLOY_TOKEN="deploy-secret", GITHUB_TOKEN="gh-secret")
    assert message.startswith(f"{path}:3: ")
    assert reason in message and "found in the current folder may not" in message
    assert "--config" in message
    assert "deploy-secret" not in message and "gh-secret" not in message


def test_a_found_file_may_not_run_a_command_and_the_command_never_runs(folder: Path) -> None:
    marker = folder.parent / "ran"
    write(folder / "mailwire.toml",
          f'host = "h"\nusername = "u"\npassword_command = {marker_command(marker)}\n')
    assert "runs a command" in refused(folder)
    with pytest.raises(ConfigError, match="runs a command"):
        SmtpClient.from_config(environ=environ(folder))
    assert not marker.exists()


def test_the_same_file_named_is_trusted(folder: Path) -> None:
    marker = folder.parent / "ran"
    path = write(folder / "mailwire.toml",
                 f'host = "h"\nusername = "u"\npassword_command = {marker_command(marker)}\n'
                 "allow_plaintext_credentials = true\n")
    assert load_settings(path, environ=environ(folder)).password == "from-command"
    marker.unlink()
    by_variable = load_settings(environ=environ(folder, MAILWIRE_CONFIG=str(path)))
    assert by_variable.password == "from-command" and by_variable.allow_plaintext_credentials


def test_pyproject_tool_table_follows_the_same_rules(folder: Path) -> None:
    path = write(folder / "pyproject.toml",
                 '[project]\nname = "x"\n\n[tool.mailwire]\nhost = "h"\n'
                 "insecure_skip_verify = true\n")
    assert refused(folder).startswith(f"{path}:6: [tool.mailwire] insecure_skip_verify: turns")


def test_mailwire_variables_and_harmless_values_are_allowed(folder: Path) -> None:
    write(folder / "mailwire.toml", 'host = "h"\nusername = "u"\n'
          'password_env = "MAILWIRE_PASSWORD"\ninsecure_skip_verify = false\n'
          "allow_plaintext_credentials = false\n")
    settings = load_settings(environ=environ(folder, MAILWIRE_PASSWORD="pw"))
    assert (settings.host, settings.password) == ("h", "pw")


def test_only_the_tables_in_use_are_judged(folder: Path) -> None:
    write(folder / "mailwire.toml",
          'host = "h"\n\n[profiles.lab]\ninsecure_skip_verify = true\n')
    assert load_settings(environ=environ(folder)).host == "h"
    assert "turns certificate verification off" in refused(folder, MAILWIRE_PROFILE="lab")


def test_the_environment_still_may_turn_verification_off_but_it_warns(folder: Path) -> None:
    with pytest.warns(InsecureSettingWarning, match="certificate verification is off"):
        client = SmtpClient.from_config(environ=environ(
            folder, MAILWIRE_HOST="h", MAILWIRE_INSECURE_SKIP_VERIFY="yes"))
    assert "CERTIFICATE-VERIFICATION-OFF" in repr(client)


# -- who may own and write a file found by searching -------------------------------------------

def foreign_file(path: Path) -> None:
    """Make ``path`` a file that belongs to another user."""
    if os.geteuid() == 0:
        write(path, 'host = "planted"\n', 0o644)
        os.chown(path, NOBODY, NOBODY)
    else:  # a link to a file root owns: the owner that counts is the target's
        path.symlink_to("/etc/hostname")


def test_a_found_file_of_another_user_is_refused_unless_named(folder: Path) -> None:
    path = folder / "mailwire.toml"
    foreign_file(path)
    message = refused(folder)
    assert message.startswith(f"{path}: belongs to ")
    assert "not to you" in message and "--config" in message
    if os.geteuid() == 0:
        assert load_settings(path, environ=environ(folder)).host == "planted"


@pytest.mark.parametrize("mode", [0o666, 0o646])
def test_a_found_file_others_may_write_is_refused(folder: Path, mode: int) -> None:
    path = write(folder / "mailwire.toml", 'host = "h"\n', mode)
    message = refused(folder)
    assert message.startswith(f"{path}: other users may change it (mode {mode:04o})")
    assert f"chmod go-w {path}" in message


def test_a_found_file_writable_by_a_shared_group_is_refused(folder: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file another group")
    path = write(folder / "mailwire.toml", 'host = "h"\n', 0o664)
    os.chown(path, 0, NOBODY)
    assert "other users may change it" in refused(folder)


def test_the_users_own_file_must_be_the_users(folder: Path) -> None:
    user_file = folder.parent / "xdg" / "mailwire" / "config.toml"
    user_file.parent.mkdir(parents=True)
    foreign_file(user_file)
    assert refused(folder).startswith(f"{user_file}: belongs to ")


def test_the_users_own_file_is_trusted(folder: Path) -> None:
    user_file = folder.parent / "xdg" / "mailwire" / "config.toml"
    user_file.parent.mkdir(parents=True)
    write(user_file, 'host = "h"\nusername = "u"\npassword_env = "MY_SMTP_PASSWORD"\n'
          "allow_plaintext_credentials = true\n")
    settings = load_settings(environ=environ(folder, MY_SMTP_PASSWORD="pw"))
    assert settings.password == "pw" and settings.allow_plaintext_credentials


# -- saying which file was used ----------------------------------------------------------------

def test_a_found_file_hiding_the_users_own_is_logged(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    user_file = folder.parent / "xdg" / "mailwire" / "config.toml"
    user_file.parent.mkdir(parents=True)
    write(user_file, 'host = "mine"\n')
    found = write(folder / "mailwire.toml", 'host = "theirs"\n')
    with caplog.at_level(logging.INFO, logger="mailwire.config"):
        settings = load_settings(environ=environ(folder))
    assert settings.host == "theirs"
    assert (f"configuration: {found} (found in the current folder; {user_file} not used)"
            in caplog.messages)


def test_the_command_line_names_the_file_in_v_and_in_errors(folder: Path) -> None:
    user_file = folder.parent / "xdg" / "mailwire" / "config.toml"
    user_file.parent.mkdir(parents=True)
    write(user_file, 'host = "mine"\n')
    found = write(folder / "mailwire.toml", 'host = "127.0.0.1"\nport = 9\nsecurity = "none"\n')
    result = run_cli("-v", "send", "--from", "a@example.com", "--to", "b@example.com",
                     "--timeout", "2", cwd=folder, env=cli_env(folder.parent / "xdg-home",
                                                               XDG_CONFIG_HOME=str(user_file.parents[1])))
    assert result.returncode == 3
    described = f"{found} (found in the current folder; {user_file} not used)"
    assert f"configuration: {described}" in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(f"(settings from {described})")


# -- the attack of the review, end to end ------------------------------------------------------

def test_a_planted_file_cannot_send_a_ci_secret_to_its_host(
    smtp_server: StartServer, folder: Path
) -> None:
    attacker = smtp_server(credentials={"x": "anything"}, auth_require_tls=False)
    write(folder / "mailwire.toml",
          f'host = "127.0.0.1"\nport = {attacker.port}\nusername = "x"\n'
          'password_env = "CI_DEPLOY_TOKEN"\nsecurity = "none"\n'
          "allow_plaintext_credentials = true\n", 0o644)
    result = run_cli("send", "--from", "a@example.com", "--to", "b@example.com", "--body", "x",
                     cwd=folder, env=cli_env(folder, CI_DEPLOY_TOKEN="deploy-secret"))
    assert result.returncode == 2
    assert "reads the environment variable CI_DEPLOY_TOKEN" in assert_one_error_line(result)
    assert attacker.messages == []
    assert "deploy-secret" not in result.stderr + result.stdout


# -- secrets only for what the operation uses --------------------------------------------------

def test_no_password_command_runs_without_a_user_name(folder: Path) -> None:
    marker = folder.parent / "ran"
    path = write(folder.parent / "named.toml",
                 f'host = "h"\npassword_command = {marker_command(marker)}\n')
    assert load_settings(path, environ=environ(folder)).password is None
    SmtpClient.from_config(path, environ=environ(folder))
    assert not marker.exists()


def test_no_password_command_runs_when_the_host_is_missing(folder: Path) -> None:
    marker = folder.parent / "ran"
    path = write(folder.parent / "named.toml",
                 f'username = "u"\npassword_command = {marker_command(marker)}\n')
    with pytest.raises(ConfigError, match="no SMTP host configured"):
        SmtpClient.from_config(path, environ=environ(folder))
    assert not marker.exists()
    assert load_settings(path, environ=environ(folder)).password == "from-command"


def test_send_without_a_user_runs_no_password_command(
    smtp_server: StartServer, folder: Path
) -> None:
    server = smtp_server()
    marker = folder.parent / "ran"
    path = write(folder.parent / "named.toml",
                 f'security = "none"\npassword_command = {marker_command(marker)}\n')
    result = run_cli("send", "--config", str(path), "--host", "127.0.0.1", "--port",
                     str(server.port), "--from", "a@example.com", "--to", "b@example.com",
                     "--body", "x", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert len(server.messages) == 1


# -- warnings ----------------------------------------------------------------------------------

def test_turning_verification_off_warns_once_per_client_and_shows_in_the_repr() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = SmtpClient("h", dangerously_skip_certificate_verification=True)
        first.dangerously_skip_certificate_verification = True
        second = SmtpClient("h")
        second.dangerously_skip_certificate_verification = True
    shown = [warning for warning in caught if warning.category is InsecureSettingWarning]
    assert len(shown) == 2
    assert all(warning.filename == __file__ for warning in shown)
    assert "certificate verification is off for h" in str(shown[0].message)
    assert "CERTIFICATE-VERIFICATION-OFF" in repr(first)
    assert "CERTIFICATE-VERIFICATION-OFF" not in repr(SmtpClient("h"))


def test_a_world_readable_file_holding_a_password_warns(folder: Path) -> None:
    path = write(folder.parent / "named.toml", 'host = "h"\npassword = "pw"\n', 0o644)
    with pytest.warns(InsecureSettingWarning, match=f"chmod 600 {path}"):
        load_settings(path, environ=environ(folder))
    path.chmod(0o600)
    indirect = write(folder.parent / "indirect.toml", 'host = "h"\npassword_env = "PW"\n',
                     0o644)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureSettingWarning)
        load_settings(path, environ=environ(folder))
        load_settings(indirect, environ=environ(folder))


def test_the_command_line_shows_library_warnings_as_its_own(folder: Path) -> None:
    result = run_cli("send", "--host", "127.0.0.1", "--port", "9", "--from", "a@example.com",
                     "--to", "b@example.com", "--timeout", "2", cwd=folder,
                     env=cli_env(folder, MAILWIRE_INSECURE_SKIP_VERIFY="yes"))
    first = result.stderr.splitlines()[0]
    assert first.startswith("mailwire: warning: certificate verification is off for 127.0.0.1")
    assert "(--insecure-skip-verify)" in first
