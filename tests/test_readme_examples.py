"""The README's configuration examples and the command that uses them work as written."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire import SecurityOptions
from mailwire.config import load_settings
from mailwire.devserver import DevServer
from tests.support.cli import cli_env, run_cli

README = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
StartServer = Callable[..., DevServer]


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


def toml_example(first_line: str) -> str:
    (block,) = [block for block in code_blocks("toml") if block.startswith(first_line)]
    return block


def readme_command(start: str) -> list[str]:
    """The command of the README's ``sh`` blocks that starts with ``start``, continuation
    lines joined, its comment removed."""
    for block in code_blocks("sh"):
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith(start):
                return shlex.split(command, comments=True)
    raise AssertionError(f"no command starting with {start!r} in the README")


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    """The README's example as ``~/.config/mailwire/config.toml``."""
    path = tmp_path / "xdg" / "mailwire" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(toml_example("# ~/.config/mailwire/config.toml"), "utf-8")
    path.chmod(0o600)
    return path


def test_the_users_file_and_its_relay_profile(user_file: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {"XDG_CONFIG_HOME": str(user_file.parents[1]), "SMTP_PASSWORD": "pw"}
    default = load_settings(environ=environ)
    assert (default.host, default.username, default.password, default.security) == (
        "smtp.example.com", "me", "pw", SecurityOptions.SSL_AUTO)
    relay = load_settings(profile="relay", environ=environ)
    assert (relay.host, relay.port, relay.security) == ("relay.internal", 25,
                                                        SecurityOptions.NONE)
    assert (relay.username, relay.password) == (None, None)


def test_the_readme_send_command_goes_through_the_relay_without_credentials(
    user_file: Path, smtp_server: StartServer, tmp_path: Path
) -> None:
    """The relay of the example offers AUTH in plaintext, as a relay that takes no login may:
    the profile's ``username = false`` keeps the top level's credentials off the wire."""
    relay = smtp_server(credentials={"me": "pw"}, auth_require_tls=False)
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "report.pdf").write_bytes(b"%PDF-1.4\n")
    command = readme_command("mailwire send --profile relay")
    env = cli_env(folder, XDG_CONFIG_HOME=str(user_file.parents[1]), SMTP_PASSWORD="pw",
                  MAILWIRE_HOST="127.0.0.1", MAILWIRE_PORT=str(relay.port))
    result = run_cli(*command[1:], cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    (received,) = relay.wait_for_messages(1)
    assert received.auth_user is None
    assert received.rcpt_tos == ("you@example.org",)

    inheriting = user_file.read_text().replace("username = false", "")
    user_file.write_text(inheriting)
    refused = run_cli(*command[1:], cwd=folder, env=env)
    assert refused.returncode == 3
    assert "--allow-plaintext-credentials" in refused.stderr


def test_the_project_file_is_accepted_where_it_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mailwire.toml"
    path.write_text(toml_example("# ./mailwire.toml in a project"), "utf-8")
    settings = load_settings(environ={"XDG_CONFIG_HOME": str(tmp_path / "none"),
                                      "MAILWIRE_PASSWORD": "from-ci"})
    assert (settings.source, settings.username, settings.password) == (path, "ci-bot",
                                                                       "from-ci")
