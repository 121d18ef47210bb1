"""``password_env`` and ``password_command``: the secret is found, and no failure shows it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from mailwire import ConfigError
from mailwire.config import load_settings, secrets

SECRET = "s3cr3t-from-command"


def config(folder: Path, line: str) -> Path:
    path = folder / "mailwire.toml"
    path.write_text(f'host = "h"\nusername = "u"\n{line}\n', "utf-8")
    return path


def command(*code: str) -> str:
    """A TOML list running Python with ``code`` (no shell involved)."""
    return json.dumps([sys.executable, "-c", "\n".join(code)])


def error_of(path: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=environ or {})
    return str(caught.value)


def test_password_env(tmp_path: Path) -> None:
    path = config(tmp_path, 'password_env = "SMTP_PASSWORD"')
    assert load_settings(path, environ={"SMTP_PASSWORD": "pw"}).password == "pw"


def test_password_env_unset_or_empty(tmp_path: Path) -> None:
    path = config(tmp_path, 'password_env = "SMTP_PASSWORD"')
    assert error_of(path) == (f"{path}:3: password_env: names the environment variable "
                              "SMTP_PASSWORD, which is not set")
    assert error_of(path, {"SMTP_PASSWORD": ""}).endswith("which is empty")


def test_password_command_output_without_its_newline(tmp_path: Path) -> None:
    path = config(tmp_path, f"password_command = {command(f'print({SECRET!r})')}")
    settings = load_settings(path, environ={})
    assert settings.password == SECRET
    assert settings.password_source == f"{path}:3: password_command"


def test_password_command_as_a_string_is_split_without_a_shell(tmp_path: Path) -> None:
    (tmp_path / "pw.txt").write_text("from file\n")
    split_me = f"{sys.executable} -c \"print(open('pw.txt').read().strip())\""
    path = config(tmp_path, f"password_command = {json.dumps(split_me)}")
    assert load_settings(path, environ={}).password == "from file"


def test_password_command_runs_in_the_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secret.txt").write_text("next to the file")
    program = command("print(open('secret.txt').read())")
    path = config(tmp_path, f"password_command = {program}")
    monkeypatch.chdir(Path(path.anchor))
    assert load_settings(path, environ={}).password == "next to the file"


def test_password_command_not_run_when_secrets_are_not_wanted(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    program = command(f"open({str(marker)!r}, 'w')")
    path = config(tmp_path, f"password_command = {program}")
    settings = load_settings(path, environ={}, resolve_secrets=False)
    assert settings.password is None
    assert not marker.exists()


def test_failing_command_shows_status_and_stderr_never_stdout(tmp_path: Path) -> None:
    path = config(tmp_path, "password_command = " + command(
        "import sys", f"print({SECRET!r})", "sys.stderr.write('gpg: decryption failed\\n')",
        "sys.exit(2)"))
    message = error_of(path)
    assert message.startswith(f"{path}:3: password_command: ")
    assert "failed with exit status 2: gpg: decryption failed" in message
    assert SECRET not in message


def test_command_printing_several_lines_is_refused_without_showing_them(tmp_path: Path) -> None:
    path = config(tmp_path, f"password_command = {command(f'print({SECRET!r}); print(1)')}")
    message = error_of(path)
    assert "printed more than one line" in message
    assert SECRET not in message


def test_command_printing_nothing(tmp_path: Path) -> None:
    path = config(tmp_path, f"password_command = {command('print()')}")
    assert error_of(path).endswith("printed nothing")


def test_missing_program(tmp_path: Path) -> None:
    path = config(tmp_path, 'password_command = ["no-such-program-mailwire"]')
    assert error_of(path) == (f"{path}:3: password_command: cannot run "
                              "'no-such-program-mailwire': no such program")


def test_command_that_hangs_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "COMMAND_TIMEOUT", 0.5)
    path = config(tmp_path, f"password_command = {command('import time; time.sleep(30)')}")
    assert error_of(path).endswith("did not finish within 0.5 s")


def test_bad_command_values(tmp_path: Path) -> None:
    assert "the command is empty" in error_of(config(tmp_path, "password_command = []"))
    assert "cannot split the command" in error_of(config(tmp_path,
                                                         "password_command = 'pass \"open'"))
    assert "expected a command" in error_of(config(tmp_path, "password_command = 3"))


def test_oauth_token_indirection(tmp_path: Path) -> None:
    path = config(tmp_path, 'oauth_token_env = "TOKEN"')
    settings = load_settings(path, environ={"TOKEN": "ya29.x"})
    assert settings.oauth_token == "ya29.x"
    assert "ya29.x" not in repr(settings)


def test_environment_password_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {"MAILWIRE_HOST": "h", "MAILWIRE_USERNAME": "u",
               "MAILWIRE_PASSWORD_COMMAND": f"{sys.executable} -c "
               "\"print('env-command')\"", "XDG_CONFIG_HOME": str(tmp_path)}
    assert load_settings(environ=environ).password == "env-command"


def test_command_output_is_bounded_in_memory(tmp_path: Path) -> None:
    """A command printing without end (["yes"]) is stopped at 64 KiB, not after the time limit
    with gigabytes read (SECURITY.md, "Secrets given indirectly")."""
    path = config(tmp_path, 'password_command = ["yes"]')
    started = time.monotonic()
    message = error_of(path)
    assert message == (f"{path}:3: password_command: 'yes' printed more than 64 KiB and was "
                       "stopped; make it print only the secret")
    assert time.monotonic() - started < 5


def test_command_output_just_under_the_bound_is_read(tmp_path: Path) -> None:
    long_secret = "k" * (secrets.MAX_OUTPUT - 1)
    path = config(tmp_path, f"password_command = {command(f'print({long_secret!r})')}")
    assert load_settings(path, environ={}).password == long_secret
