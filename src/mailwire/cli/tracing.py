"""``-v``: the SMTP protocol trace on standard error.

The trace is the library's ``mailwire.protocol`` logger at DEBUG, which already redacts AUTH
exchanges; ``-vv`` adds every other mailwire logger (the development server's, for instance).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

PROTOCOL_LOGGER = "mailwire.protocol"


def enable(verbosity: int, stream: TextIO | None = None) -> None:
    if verbosity > 0:
        enable_logger(PROTOCOL_LOGGER if verbosity == 1 else "mailwire", stream)


def enable_logger(name: str, stream: TextIO | None = None, *, level: int = logging.DEBUG) -> None:
    """The records of logger ``name`` from ``level`` up on ``stream`` (standard error)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
