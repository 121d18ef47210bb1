"""``-v``: the SMTP protocol trace on standard error.

The trace is the library's ``mailwire.protocol`` logger at DEBUG, which already redacts AUTH
exchanges, with the ``mailwire.config`` logger (which configuration file was used) and the
``mailwire.cli`` one (what the command waits for); ``-vv`` adds every other mailwire logger
(the development server's, for instance).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from mailwire.cli.terminal import PrintableFormatter

PROTOCOL_LOGGER = "mailwire.protocol"
CONFIG_LOGGER = "mailwire.config"
"""Which configuration file was used (and which one it hid)."""
CLI_LOGGER = "mailwire.cli"
"""What the command is about to do and wait for."""


def enable(verbosity: int, stream: TextIO | None = None) -> None:
    if verbosity == 1:
        for name in (CONFIG_LOGGER, CLI_LOGGER, PROTOCOL_LOGGER):
            enable_logger(name, stream)
    elif verbosity > 1:
        enable_logger("mailwire", stream)


def enable_logger(name: str, stream: TextIO | None = None, *, level: int = logging.DEBUG) -> None:
    """The records of logger ``name`` from ``level`` up on ``stream`` (standard error)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(PrintableFormatter("%(message)s"))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
