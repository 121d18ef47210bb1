"""The runtime dependencies; everything else about the package is in pyproject.toml.

An editable install of a development checkout (``pip install -e .``) also gets the ``server``
extra (see build_backend/mailwire_build.py); a wheel does not.
"""

import os
import tomllib
from pathlib import Path

from setuptools import setup

RUNTIME = [
    "python-socks>=2.7",
    "scramp>=1.4",
    "cryptography>=45",
]


def server_extra() -> list[str]:
    project = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text("utf-8"))
    extras: list[str] = project["project"]["optional-dependencies"]["server"]
    return extras


editable = os.environ.get("_MAILWIRE_EDITABLE_BUILD") == "1"
setup(install_requires=RUNTIME + (server_extra() if editable else []))
