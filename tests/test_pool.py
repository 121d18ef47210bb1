"""SmtpPool against real servers: sharing between threads, limits, idle connections, closing.

Connections are counted on the server side: ``ReceivedMessage.peer`` (the client's address and
port) tells which connection carried each message, and the counting server knows how many
connections are open at any moment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailwire import (
    AuthenticationError,
    Outgoing,
    SmtpClient,
    SmtpPool,
    SmtpTimeoutError,
    SmtpUsageError,
)
from mailwire.devserver import Certificates, DevServer
from tests.support.chaos import ChaosServer
from tests.support.pooling import PASSWORD, USER, labelled, secure_options

Counting = Callable[..., ChaosServer]


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_threads_share_a_few_authenticated_connections(
    secure_server: DevServer, certificates: Certificates
) -> None:
    pool = SmtpPool("127.0.0.1", secure_server.port, max_connections=3,
                    **secure_options(certificates))
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for number in range(15):
                pool.send(labelled(f"{thread}-{number}"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    pool.close()
    assert errors == []
    received = secure_server.wait_for_messages(120)
    assert len(received) == 120
    assert {message.auth_user for message in received} == {USER}
    assert {message.tls_version is not None for message in received} == {True}
    connections = {message.peer for message in received}
    assert 1 <= len(connections) <= 3


def test_sequential_sends_reuse_one_connection(
    secure_server: DevServer, certificates: Certificates
) -> None:
    with SmtpPool("127.0.0.1", secure_server.port, **secure_options(certificates)) as pool:
        for number in range(5):
            pool.send(labelled(number))
        assert (pool.in_use, pool.idle) == (0, 1)
    received = secure_server.wait_for_messages(5)
    assert len({message.peer for message in received}) == 1


def test_when_all_are_busy_a_caller_waits_then_times_out(counting_server: Counting) -> None:
    server = counting_server()
    pool = SmtpPool(server.host, server.port, security="none", max_connections=1,
                    wait_timeout=0.3)
    with pool.borrow():
        started = time.monotonic()
        with pytest.raises(SmtpTimeoutError) as caught:
            pool.send(labelled("late"))
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2.0
    assert f"127.0.0.1:{server.port}" in str(caught.value)
    assert "all 1 in use" in str(caught.value)
    pool.send(labelled("after"))
    assert server.counts == {"after": 1}
    pool.close()


def test_a_waiting_caller_gets_the_connection_as_soon_as_it_is_given_back(
    counting_server: Counting,
) -> None:
    server = counting_server()
    pool = SmtpPool(server.host, server.port, security="none", max_connections=1,
                    wait_timeout=10.0)
    released = threading.Event()
    sent_at: list[float] = []

    def waiter() -> None:
        pool.send(labelled("waiter"))
        sent_at.append(time.monotonic())

    with pool.borrow() as client:
        client.send(labelled("holder"))
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)
        assert sent_at == []
        given_back = time.monotonic()
        released.set()
    thread.join(10)
    assert sent_at and sent_at[0] - given_back < 1.0
    assert server.counts == {"holder": 1, "waiter": 1}
    assert server.stats.connections == 1
    pool.close()


def test_a_pool_sends_an_outgoing_as_a_client_does(counting_server: Counting) -> None:
    server = counting_server()
    with SmtpPool(server.host, server.port, security="none") as pool:
        result = pool.send(Outgoing(labelled("given whole"), recipients=["other@example.org"]))
    assert result.accepted == ("other@example.org",)
    assert server.counts == {"given whole": 1}


def test_idle_connections_are_quit_after_the_idle_timeout(counting_server: Counting) -> None:
    server = counting_server()
    pool = SmtpPool(server.host, server.port, security="none", idle_timeout=0.3)
    pool.send(labelled(1))
    assert server.active == 1
    assert _wait_until(lambda: server.active == 0, 3.0), "the idle connection was not closed"
    assert pool.idle == 0
    pool.send(labelled(2))
    assert server.counts == {"1": 1, "2": 1}
    assert server.stats.connections == 2
    pool.close()


def test_a_connection_the_server_closed_meanwhile_is_replaced(counting_server: Counting) -> None:
    server = counting_server(idle=0.3)
    pool = SmtpPool(server.host, server.port, security="none")
    pool.send(labelled("before"))
    assert _wait_until(lambda: server.active == 0, 3.0)
    result = pool.send(labelled("after"))
    assert result.accepted == ("user@example.org",)
    assert server.counts == {"before": 1, "after": 1}
    assert server.stats.connections == 2
    pool.close()


def test_close_quits_every_connection_including_borrowed_ones(counting_server: Counting) -> None:
    server = counting_server()
    pool = SmtpPool(server.host, server.port, security="none", max_connections=3)
    holders = [pool.borrow() for _ in range(3)]
    clients = [holder.__enter__() for holder in holders]
    for number, client in enumerate(clients):
        client.send(labelled(number))
    holders[0].__exit__(None, None, None)
    assert server.active == 3
    pool.close()
    assert _wait_until(lambda: server.active == 2, 3.0)
    for holder in holders[1:]:
        holder.__exit__(None, None, None)
    assert _wait_until(lambda: server.active == 0, 3.0)
    assert not any(client.is_connected for client in clients)
    with pytest.raises(SmtpUsageError, match="closed"):
        pool.send(labelled("late"))
    assert "closed" in repr(pool)


def test_a_block_left_by_a_non_mailwire_error_does_not_give_back_its_connection(
    counting_server: Counting,
) -> None:
    server = counting_server()
    pool = SmtpPool(server.host, server.port, security="none", max_connections=1)
    with pytest.raises(RuntimeError), pool.borrow() as client:
        client.noop()
        raise RuntimeError("the application failed mid-way")
    assert not client.is_connected
    assert (pool.in_use, pool.idle) == (0, 0)
    pool.send(labelled("next"))
    assert server.stats.connections == 2
    assert server.counts == {"next": 1}
    pool.close()


def test_a_message_whose_source_fails_half_way_never_starts_the_next_one(
    counting_server: Counting,
) -> None:
    server = counting_server()
    pool = SmtpPool(server.host, server.port, security="none", max_connections=1)

    def failing() -> object:
        yield labelled("broken")[:60]
        raise OSError("the disk went away")

    with pytest.raises(Exception, match="disk"):
        pool.send(failing())
    pool.send(labelled("whole"))
    assert server.counts == {"whole": 1}
    assert server.unlabelled == 0
    pool.close()


def test_repr_and_errors_never_show_the_password(
    secure_server: DevServer, certificates: Certificates
) -> None:
    options = secure_options(certificates) | {"password": "wrong-" + PASSWORD}
    pool = SmtpPool("127.0.0.1", secure_server.port, **options)
    with pytest.raises(AuthenticationError) as caught:
        pool.send(labelled(1))
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(pool)
    assert f"127.0.0.1:{secure_server.port}" in repr(pool)
    assert "pool-user" in repr(pool)
    pool.close()


def test_every_client_option_reaches_the_connections(
    secure_server: DevServer, certificates: Certificates
) -> None:
    with pytest.raises(SmtpUsageError, match="no_such_option"):
        SmtpPool("127.0.0.1", secure_server.port, no_such_option=1)
    pool = SmtpPool("127.0.0.1", secure_server.port, local_hostname="pooled.example",
                    bind_endpoint=("127.0.0.1", 0), **secure_options(certificates))
    pool.send(labelled(1))
    pool.close()
    [message] = secure_server.wait_for_messages(1)
    assert message.helo_name == "pooled.example"
    assert message.auth_user == USER


def test_from_config_reads_the_file_and_profile_once(
    secure_server: DevServer, certificates: Certificates, tmp_path: Path
) -> None:
    counter = tmp_path / "password-reads"
    script = tmp_path / "password.sh"
    script.write_text(f"#!/bin/sh\necho x >> {counter}\necho {PASSWORD}\n")
    script.chmod(0o755)
    config = tmp_path / "mailwire.toml"
    config.write_text(
        'host = "mail.invalid"\n'
        "[profiles.pooled]\n"
        f'host = "127.0.0.1"\nport = {secure_server.port}\nusername = "{USER}"\n'
        f'password_command = ["{script}"]\nsecurity = "ssl_explicit"\n'
        f'ca_file = "{certificates.ca_file}"\n')
    pool = SmtpPool.from_config(config, "pooled", environ={}, max_connections=2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for number in range(5):
                pool.send(labelled(number))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    pool.close()
    assert errors == []
    assert len(secure_server.wait_for_messages(15)) == 15
    assert counter.read_text().count("x") == 1


def test_from_factory_and_wrong_limits(counting_server: Counting) -> None:
    server = counting_server()
    made: list[SmtpClient] = []

    def make() -> SmtpClient:
        client = SmtpClient(server.host, server.port, security="none")
        made.append(client)
        return client

    pool = SmtpPool.from_factory(make, max_connections=2)
    pool.send(labelled(1))
    assert len(made) == 1
    pool.close()
    with pytest.raises(SmtpUsageError):
        SmtpPool(server.host, server.port, max_connections=0)
    with pytest.raises(SmtpUsageError):
        SmtpPool(server.host, server.port, idle_timeout=0)
