"""A pool used in a forked child never uses its parent's connections.

The parent sends first, so its pool holds a live connection when it forks. The child sends on
the same pool object; the server must see the child's message on a connection of its own, and
the parent's connection must still work afterwards (its conversation was not disturbed).
"""

from __future__ import annotations

import os
import signal
import threading
import warnings
import weakref
from collections.abc import Callable

import pytest

from mailwire import SmtpPool
from mailwire.devserver import Certificates, DevServer
from mailwire.pool import forks
from tests.support.pooling import labelled, secure_options


def _in_child(work: Callable[[], None]) -> int:
    """Run ``work`` in a forked child; its exit status (0 when it returned)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: on purpose
        pid = os.fork()
    if pid == 0:
        signal.alarm(20)  # a child that hangs dies instead of hanging the test
        status = 0
        try:
            work()
        except BaseException:
            status = 1
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("hooks", ["at-fork hook", "pid check"])
def test_a_child_process_opens_its_own_connection(
    secure_server: DevServer, certificates: Certificates, hooks: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = SmtpPool("127.0.0.1", secure_server.port, **secure_options(certificates))
    pool.send(labelled("parent-1"))
    if hooks == "pid check":
        monkeypatch.setattr(forks, "_pools", weakref.WeakSet())
    assert _in_child(lambda: pool.send(labelled("child"))) == 0
    pool.send(labelled("parent-2"))
    pool.close()
    received = {message.data.split(b"X-Soak-Id: ")[1].split(b"\r\n")[0]: message.peer
                for message in secure_server.wait_for_messages(3)}
    assert received[b"parent-1"] == received[b"parent-2"]
    assert received[b"child"] != received[b"parent-1"]


def test_a_lock_held_by_another_thread_at_fork_time_does_not_block_the_child(
    secure_server: DevServer, certificates: Certificates,
) -> None:
    pool = SmtpPool("127.0.0.1", secure_server.port, wait_timeout=2.0,
                    **secure_options(certificates))
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with pool._condition:
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    try:
        status = _in_child(lambda: pool.send(labelled("child")))
    finally:
        release.set()
        holder.join(10)
    assert status == 0
    pool.close()
    assert len(secure_server.wait_for_messages(1)) == 1
