"""Optional dependencies of mechanisms: whether an extra is installed, without importing it.

``import mailwire`` never imports an extra's libraries; a mechanism imports them when its
exchange starts, and asks ``missing_extra`` first so that a missing one is a clear error saying
what to install instead of an ``ImportError``.
"""

from __future__ import annotations

import importlib.util


def missing_extra(extra: str, *modules: str) -> str | None:
    """``None`` when every module is importable, else what to install (for error messages)."""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules
            found = False
        if not found:
            return f"needs the {extra} extra ({module} is missing): pip install 'mailwire[{extra}]'"
    return None
