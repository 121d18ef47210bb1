"""The build backend: setuptools, plus the ``server`` extra for editable installs.

``pip install mailwire`` (a wheel) installs the library and the command line without the
development server's packages (aiosmtpd, trustme), which only ``mailwire serve`` and ``mailwire
demo`` use. A development checkout installed with ``pip install -e .`` is there to run the
demo and the tests, so its editable build also depends on the ``server`` extra: the README's
``pip install -e . && mailwire demo`` works as written. ``setup.py`` reads ``EDITABLE``.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import build_meta
from setuptools.build_meta import (  # noqa: F401  (the hooks a frontend calls)
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)

EDITABLE = "_MAILWIRE_EDITABLE_BUILD"


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    os.environ[EDITABLE] = "1"
    return build_meta.get_requires_for_build_editable(config_settings)


def prepare_metadata_for_build_editable(metadata_directory: str,
                                        config_settings: dict[str, Any] | None = None) -> str:
    os.environ[EDITABLE] = "1"
    return build_meta.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    os.environ[EDITABLE] = "1"
    return build_meta.build_editable(wheel_directory, config_settings, metadata_directory)
