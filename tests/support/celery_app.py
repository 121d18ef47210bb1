"""The Celery application the test workers run: ``celery -A tests.support.celery_app worker``.

It reads the broker URL from ``$TEST_CELERY_BROKER`` and the workers' mailwire configuration
from ``$TEST_CELERY_MAILWIRE_CONFIG`` (stored .eml files from ``$TEST_CELERY_EML_DIRECTORY``);
the tasks retry quickly (``retry_backoff`` 0.05 s) so the tests take seconds.
"""

from __future__ import annotations

import os

from celery import Celery

from mailwire.integrations.celery import MailTasks, register_tasks


def make_app(broker: str, config: str | None = None,
             eml_directory: str | None = None) -> tuple[Celery, MailTasks]:
    app = Celery("mailwire_tests", broker=broker, backend=broker)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                    broker_connection_retry_on_startup=True, worker_prefetch_multiplier=8,
                    result_expires=600, worker_hijack_root_logger=False)
    tasks = register_tasks(app, config=config, max_retries=6, retry_backoff=0.05,
                           retry_backoff_max=0.5, options={"max_connections": 2},
                           eml_directories=[eml_directory] if eml_directory else [])
    return app, tasks


if "TEST_CELERY_BROKER" in os.environ:
    app, tasks = make_app(os.environ["TEST_CELERY_BROKER"],
                          os.environ.get("TEST_CELERY_MAILWIRE_CONFIG"),
                          os.environ.get("TEST_CELERY_EML_DIRECTORY"))
