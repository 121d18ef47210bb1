"""Python interpreters with a given Django installed, for the Django integration tests.

Django 5.2 LTS runs on the interpreter running the tests (Django is in the ``test`` extra).
Django 6.1 needs Python 3.12 or newer: ``$TEST_DJANGO61_PYTHON`` names an interpreter
that has it (with mailwire's dependencies); otherwise a virtual environment is made for the
session in a temporary folder from the first Python 3.12+ found, with Django 6.1 and mailwire's
dependencies installed by pip. mailwire itself comes from this checkout (``PYTHONPATH``).
Where neither is possible the tests are skipped, except in CI, where they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DJANGO61 = "django>=6.1,<6.2"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _modern_python() -> str | None:
    candidates = [shutil.which(name) for name in ("python3.13", "python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[23]*/bin/python")))
    for candidate in candidates:
        if candidate and subprocess.run(
                [candidate, "-c", "import sys; assert sys.version_info >= (3, 12)"],
                capture_output=True).returncode == 0:
            return candidate
    return None


def _dependencies() -> list[str]:
    """mailwire's runtime requirements, as the installed checkout declares them."""
    return [requirement for requirement in metadata.requires("mailwire") or []
            if "extra ==" not in requirement]


@pytest.fixture(scope="session")
def django_python(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``django_python("5.2")`` / ``django_python("6.1")``: an interpreter with that Django."""
    made: dict[str, str] = {}

    def get(version: str) -> str:
        if version in made:
            return made[version]
        if version == "5.2":
            try:
                installed = metadata.version("django")
            except metadata.PackageNotFoundError:
                _unavailable("Django is not installed (pip install -e '.[test]')")
            if not installed.startswith("5.2"):
                _unavailable(f"Django 5.2 expected on this interpreter, found {installed}")
            made[version] = sys.executable
        elif os.environ.get("TEST_DJANGO61_PYTHON"):
            made[version] = os.environ["TEST_DJANGO61_PYTHON"]
        else:
            python = _modern_python()
            if python is None:
                _unavailable("no Python 3.12 or newer for Django 6.1")
            assert python is not None
            venv = tmp_path_factory.mktemp("django61") / "venv"
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                   "--disable-pip-version-check", DJANGO61, *_dependencies()]
            installed = subprocess.run(pip, capture_output=True, text=True)
            if installed.returncode != 0:
                _unavailable(f"could not install Django 6.1: {installed.stderr[-2000:]}")
            made[version] = str(venv / "bin" / "python")
        return made[version]

    return get
