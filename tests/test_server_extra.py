"""The development server's packages (aiosmtpd, trustme) are the ``server`` extra: the library
and the other commands work without them, and ``serve``/``demo`` say what to install."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mailwire.cli.serve import TLS_CHOICES
from mailwire.devserver import TlsMode

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_EXTRA = """
import importlib.abc, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("aiosmtpd", "trustme"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""


def run_without_extra(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRA + code], capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_library_and_the_other_commands_do_not_need_the_extra() -> None:
    result = run_without_extra(
        "import mailwire, mailwire.cli.app\n"
        "from mailwire.cli.app import main\n"
        "assert not {'aiosmtpd', 'trustme'} & set(sys.modules)\n"
        "print(main(['probe', '--json', '127.0.0.1:1', '--timeout', '1']))\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "3"


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_serve_and_demo_name_the_extra(command: str) -> None:
    result = run_without_extra(f"from mailwire.cli.app import main\nsys.exit(main([{command!r}]))")
    assert result.returncode == 2
    assert result.stderr == (f"mailwire: error: mailwire {command} needs the development "
                             "server, which needs aiosmtpd: pip install 'mailwire[server]'\n")


def test_importing_the_server_without_the_extra_says_what_to_install() -> None:
    result = run_without_extra("import mailwire.devserver")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "ImportError: mailwire.devserver needs aiosmtpd, which comes with the server extra: "
        "pip install 'mailwire[server]'")


def test_the_extra_holds_what_the_server_imports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    server = project["optional-dependencies"]["server"]
    assert sorted(requirement.split(">")[0] for requirement in server) == ["aiosmtpd",
                                                                          "trustme"]
    assert "dependencies" in project["dynamic"]
    setup = (ROOT / "setup.py").read_text("utf-8")
    assert "aiosmtpd" not in setup and "trustme" not in setup


def test_serve_lists_the_servers_tls_modes_without_importing_it() -> None:
    assert tuple(mode.value for mode in TlsMode) == TLS_CHOICES
