"""Loading the development server for ``serve`` and ``demo``, which need the ``server`` extra.

aiosmtpd and trustme are not installed with ``pip install mailwire``: a library user does not
need them. ``pip install 'mailwire[server]'`` adds them (a development checkout installed with
``pip install -e .`` has them already). Without them, ``serve`` and ``demo`` stop with a usage
error that says so, and every other command works.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mailwire.errors import SmtpUsageError

INSTALL = "pip install 'mailwire[server]'"


def load(command: str) -> ModuleType:
    """``mailwire.devserver``, or a SmtpUsageError naming the extra to install."""
    try:
        return importlib.import_module("mailwire.devserver")
    except ImportError as error:
        missing = error.name or "its packages"
        raise SmtpUsageError(f"mailwire {command} needs the development server, which needs "
                             f"{missing}: {INSTALL}") from None
