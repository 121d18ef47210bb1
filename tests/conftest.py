"""Shared pytest wiring: every fixture module under tests/support is a plugin."""

pytest_plugins = [
    "tests.support.servers",
    "tests.support.proxies",
    "tests.support.scripted",
    "tests.support.clients",
    "tests.support.sinks",
    "tests.support.postfix",
    "tests.support.chaos",
    "tests.support.dovecot_sasl",
]
