"""Shared pytest wiring: every fixture module under tests/support is a plugin."""

pytest_plugins = [
    "tests.support.servers",
    "tests.support.proxies",
    "tests.support.scripted",
    "tests.support.clients",
    "tests.support.sinks",
    "tests.support.postfix",
    "tests.support.chaos",
    "tests.support.greet_pause",
    "tests.support.kerberos",
    "tests.support.samba_dovecot",
    "tests.support.gssapi_acceptor",
    "tests.support.pooling",
    "tests.support.django_envs",
    "tests.support.celery_worker",
    "tests.support.dovecot_sasl",
]
