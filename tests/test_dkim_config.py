"""DKIM signing from the configuration (``dkim_key``, ``dkim_selector``, ``dkim_domain``, also as
``MAILWIRE_DKIM_*``) and the command line (``--dkim-key``, ``--dkim-selector``,
``--dkim-domain`` on ``send`` and ``send-many``).

A configuration file found in the current folder may name the server, not the private key to
sign with (SECURITY.md, "Configuration found by searching"): the key comes from the user's own
file, a file they name, the environment or the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire import ConfigError, SmtpClient
from mailwire.config import load_settings
from mailwire.devserver import DevServer
from tests.support.cli import assert_one_error_line, cli_env, run_cli
from tests.support.dkim_keys import DOMAIN, SELECTOR, key_pair, verifies

RSA = key_pair("rsa")
MESSAGE = b"From: alice@example.com\nTo: bob@example.org\nBcc: c@example.net\nSubject: s\n\nhi\n"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "checkout"
    project.mkdir()
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "dkim.pem"
    path.parent.mkdir()
    path.write_bytes(RSA.pem)
    path.chmod(0o600)
    return path


def environ(folder: Path, **extra: str) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(folder.parent / "xdg"), **extra}


def write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    path.chmod(0o600)
    return path


def dkim_lines(key: Path) -> str:
    return f'dkim_key = "{key}"\ndkim_selector = "{SELECTOR}"\ndkim_domain = "{DOMAIN}"\n'


def test_a_named_file_sets_up_signing(folder: Path, key_file: Path,
                                      server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()
    path = write(folder / "mailwire.toml", f'host = "{server.host}"\nport = {server.port}\n'
                 f'security = "none"\n{dkim_lines(key_file)}')
    client = SmtpClient.from_config(path, environ=environ(folder))
    assert client.dkim_signer is not None and client.dkim_signer.selector == SELECTOR
    with client:
        client.send(MESSAGE)
    (received,) = server.wait_for_messages(1)
    assert verifies(received.data, RSA)


def test_the_user_own_file_may_name_the_key(folder: Path, key_file: Path) -> None:
    own = folder.parent / "xdg" / "mailwire"
    own.mkdir(parents=True)
    write(own / "config.toml", f'host = "h"\n{dkim_lines(key_file)}')
    assert load_settings(environ=environ(folder)).dkim_key == str(key_file)


def test_a_file_of_the_current_folder_may_not_name_a_private_key(folder: Path,
                                                                 key_file: Path) -> None:
    path = write(folder / "mailwire.toml", f'host = "h"\n{dkim_lines(key_file)}')
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ(folder))
    assert str(caught.value).startswith(f"{path}:2: dkim_key: signs with a private key")
    # the rest may come from it, and the key from the environment
    write(folder / "mailwire.toml", f'host = "h"\ndkim_selector = "{SELECTOR}"\n'
          f'dkim_domain = "{DOMAIN}"\n')
    client = SmtpClient.from_config(environ=environ(folder, MAILWIRE_DKIM_KEY=str(key_file)))
    assert client.dkim_signer is not None and client.dkim_signer.domain == DOMAIN


def test_the_environment_alone_sets_up_signing(folder: Path, key_file: Path) -> None:
    client = SmtpClient.from_config(environ=environ(
        folder, MAILWIRE_HOST="h", MAILWIRE_DKIM_KEY=str(key_file),
        MAILWIRE_DKIM_SELECTOR=SELECTOR, MAILWIRE_DKIM_DOMAIN=DOMAIN))
    assert repr(client.dkim_signer).startswith("<DkimSigner d=example.com s=mail2024")


def test_the_three_keys_go_together(folder: Path, key_file: Path) -> None:
    with pytest.raises(ConfigError, match="missing: dkim_selector"):
        SmtpClient.from_config(environ=environ(
            folder, MAILWIRE_HOST="h", MAILWIRE_DKIM_KEY=str(key_file),
            MAILWIRE_DKIM_DOMAIN=DOMAIN))


@pytest.mark.parametrize(("line", "problem"), [
    ('dkim_selector = "a;b=c"', "dkim_selector: DKIM selector 'a;b=c' is not a selector"),
    ('dkim_domain = "example"', "dkim_domain: DKIM domain 'example' is not a domain name"),
    ('dkim_key = "missing.pem"', "dkim_key: no such file"),
])
def test_a_bad_value_names_the_file_line_and_key(folder: Path, line: str,
                                                 problem: str) -> None:
    path = write(folder / "named.toml", f'host = "h"\n{line}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=environ(folder))
    assert str(caught.value).startswith(f"{path}:2: ")
    assert problem in str(caught.value)


def test_cli_send_signs_with_the_options(tmp_path: Path, key_file: Path,
                                         server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()
    eml = tmp_path / "message.eml"
    eml.write_bytes(MESSAGE)
    result = run_cli("send", "--host", server.host, "--port", str(server.port),
                     "--security", "none", "--eml", str(eml), "--dkim-key", str(key_file),
                     "--dkim-selector", SELECTOR, "--dkim-domain", DOMAIN, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    composed = run_cli("send", "--host", server.host, "--port", str(server.port),
                       "--security", "none", "--from", "alice@example.com", "--to",
                       "bob@example.org", "--subject", "Hi", "--body", "Body",
                       cwd=tmp_path, env=cli_env(tmp_path, MAILWIRE_DKIM_KEY=str(key_file),
                                                 MAILWIRE_DKIM_SELECTOR=SELECTOR,
                                                 MAILWIRE_DKIM_DOMAIN=DOMAIN))
    assert composed.returncode == 0, composed.stderr
    messages = server.wait_for_messages(2)
    assert all(verifies(message.data, RSA) for message in messages)
    assert b"c@example.net" not in messages[0].data


def test_cli_send_many_signs_every_message(tmp_path: Path, key_file: Path,
                                           server_pool: Callable[..., DevServer]) -> None:
    server = server_pool()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    for number in range(3):
        (outbox / f"{number}.eml").write_bytes(MESSAGE.replace(b"hi", b"hi %d" % number))
    result = run_cli("send-many", "--host", server.host, "--port", str(server.port),
                     "--security", "none", "--dkim-key", str(key_file), "--dkim-selector",
                     SELECTOR, "--dkim-domain", DOMAIN, str(outbox), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert all(verifies(message.data, RSA) for message in server.wait_for_messages(3))


def test_cli_refuses_an_incomplete_or_wrong_dkim_setup_before_connecting(
    tmp_path: Path, key_file: Path
) -> None:
    # Port 9 has no server: reaching it would be a connection error (exit 3), not 2.
    common = ["send", "--host", "127.0.0.1", "--port", "9", "--security", "none",
              "--from", "a@example.com", "--to", "b@example.org", "--body", "x"]
    missing = run_cli(*common, "--dkim-key", str(key_file), "--dkim-domain", DOMAIN,
                      cwd=tmp_path)
    assert missing.returncode == 2
    assert "missing: dkim_selector" in assert_one_error_line(missing)
    bad = run_cli(*common, "--dkim-key", str(key_file), "--dkim-domain", DOMAIN,
                  "--dkim-selector", "no;good", cwd=tmp_path)
    assert bad.returncode == 2 and "is not a selector" in bad.stderr
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_bytes(b"hello")
    wrong = run_cli(*common, "--dkim-key", str(not_a_key), "--dkim-domain", DOMAIN,
                    "--dkim-selector", SELECTOR, cwd=tmp_path)
    assert wrong.returncode == 2
    assert "neither a PEM private key" in assert_one_error_line(wrong)
