"""The warnings mailwire gives, and ``warn``, which points them at the caller's code.

    MailwireWarning (UserWarning)
    ├── InsecureSettingWarning   certificate verification is off; a password in a file that
    │                            every user may read
    └── SuspiciousValueWarning   a value that is probably in the wrong unit (milliseconds
                                 given where mailwire takes seconds)

``InsecureSettingWarning`` is shown every time it is given (mailwire gives it once per client
or configuration), unless the program's own warning filters say otherwise.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path


class MailwireWarning(UserWarning):
    """Base class of mailwire's warnings."""


class InsecureSettingWarning(MailwireWarning):
    """A setting makes connections or secrets unsafe."""


class SuspiciousValueWarning(MailwireWarning):
    """A value is allowed but probably not what was meant."""


warnings.simplefilter("always", InsecureSettingWarning, append=True)

_PACKAGE = str(Path(__file__).resolve().parent)


def warn(message: str, category: type[MailwireWarning]) -> None:
    """``warnings.warn`` attributed to the first caller outside mailwire."""
    frame = sys._getframe(1)
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
