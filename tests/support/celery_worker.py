"""A real Redis server and real Celery workers, started by the tests.

``redis_server`` (session) runs Debian's ``redis-server`` on 127.0.0.1 with a free port, its
own data folder and no persistence. ``celery_worker(config, concurrency=2, eml_directory=None)``
starts ``celery -A tests.support.celery_app worker`` with that many prefork processes (output
in the file ``worker.log``), waits until it answers a ping, and stops it after the test (warm
shutdown, so the processes QUIT their connections). Where redis-server is missing the tests
are skipped, except in CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.django_envs import ROOT

REDIS_SERVER = "redis-server"


@dataclass(frozen=True)
class RunningRedis:
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRedis]:
    if shutil.which(REDIS_SERVER) is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server (Debian package redis-server) is not installed")
        pytest.skip("redis-server (Debian package redis-server) is not installed")
    directory = tmp_path_factory.mktemp("redis")
    port = _free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"redis-server did not start: {process.communicate()[1]!r}")
        time.sleep(0.05)
    try:
        yield RunningRedis(port, directory)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def flush_redis(redis: RunningRedis) -> None:
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as connection:
        connection.sendall(b"FLUSHALL\r\n")
        connection.recv(64)


@pytest.fixture
def celery_worker(redis_server: RunningRedis) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``celery_worker(config, concurrency=2)``: a started worker, stopped after the test."""
    started: list[subprocess.Popen[str]] = []
    flush_redis(redis_server)

    def start(config: Path, concurrency: int = 2,
              eml_directory: Path | None = None) -> subprocess.Popen[str]:
        environment = {name: value for name, value in os.environ.items()
                       if not name.startswith("MAILWIRE_")}
        environment |= {"TEST_CELERY_BROKER": redis_server.url,
                        "TEST_CELERY_MAILWIRE_CONFIG": str(config),
                        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
        if eml_directory is not None:
            environment["TEST_CELERY_EML_DIRECTORY"] = str(eml_directory)
        log = redis_server.directory / f"worker-{time.monotonic_ns()}.log"
        with log.open("w") as output:
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.support.celery_app", "worker",
                 "--pool", "prefork", "--concurrency", str(concurrency), "--loglevel", "INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "--hostname", f"mailwire-test-{len(started)}@%h"],
                cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT, text=True)
        worker.log = log  # type: ignore[attr-defined]
        started.append(worker)
        _wait_ready(redis_server, worker, log)
        return worker

    yield start
    for worker in started:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)


def _wait_ready(redis: RunningRedis, worker: subprocess.Popen[str], log: Path) -> None:
    from tests.support.celery_app import make_app

    app, _ = make_app(redis.url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            pytest.fail(f"the celery worker exited: {log.read_text()[-3000:]}")
        if app.control.ping(timeout=0.5):
            app.close()
            return
    app.close()
    worker.kill()
    pytest.fail("the celery worker did not answer a ping within 30 s")
