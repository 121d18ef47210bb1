"""Where Python applications send mail: Django (``mailwire.integrations.django``), the
``logging`` module (``mailwire.integrations.logging``) and Celery
(``mailwire.integrations.celery``).

Nothing here is imported by ``import mailwire``. The Django and Celery modules need their
extras (``pip install 'mailwire[django]'``, ``'mailwire[celery]'``); importing one without its
extra raises an ``ImportError`` that names the extra to install.
"""

from __future__ import annotations


def missing_extra(package: str, extra: str) -> ImportError:
    """The error for an integration whose optional dependency is not installed."""
    return ImportError(f"{package} is not installed: install it with "
                       f"pip install 'mailwire[{extra}]'")
