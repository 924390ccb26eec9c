"""Shared fixtures: API client and a real Celery worker process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from rest_framework.test import APIClient

BASE_DIR = Path(__file__).resolve().parent.parent


# mypy on apps/ takes a minute or two of one core and shares nothing with the other tests:
# when its test is selected it starts in the background as soon as the run is collected, and
# the test (near the end of the run) waits for its result instead of blocking the run.
MYPY_TEST = "test_apps_type_check_with_mypy"
_background: dict[str, tuple[subprocess.Popen, Any]] = {}


def mypy_start() -> tuple[subprocess.Popen, Any]:
    import tempfile

    output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (mypy_result closes it)
    process = subprocess.Popen(
        [sys.executable, "-m", "mypy", "apps"],
        cwd=BASE_DIR,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, output


def pytest_collection_modifyitems(session, config, items):  # type: ignore[no-untyped-def]
    if any(item.name == MYPY_TEST for item in items) and "mypy" not in _background:
        _background["mypy"] = mypy_start()


@pytest.fixture
def mypy_result() -> tuple[int, str]:
    """(exit code, output) of `mypy apps`, started in the background at collection."""
    process, output = _background.pop("mypy", None) or mypy_start()
    code = process.wait(timeout=900)
    with output:
        output.seek(0)
        return code, output.read()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _redis_not_backing_off() -> Iterator[None]:
    """A test that failed a publish or a rate-limit check on purpose (a dead Redis) leaves
    the next test's publishes and checks alone."""
    from apps.core.broker import broker_backoff
    from apps.safety import throttle

    broker_backoff.reset()
    throttle.backoff.reset()
    yield


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """Every test starts with empty rate-limit counters (they live in the shared Redis)."""
    yield
    from apps.safety import throttle

    if throttle._limiter.cache_info().currsize:
        with contextlib.suppress(Exception):  # a test that pointed it at a dead Redis
            throttle._limiter().storage.reset()


def test_database_url() -> str:
    """DATABASE_URL rewritten to the test database pytest-django created."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_stop(process: subprocess.Popen) -> None:
    """Stop a child process: politely, then for good after 20 s."""
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def celery_worker_log(node: str) -> Path:
    """Where `celery_worker` writes the output of the worker named `node`."""
    return Path(os.environ["DESKPILOT_HOME"]) / f"celery-worker-{node.split('@')[0]}.log"


@contextlib.contextmanager
def celery_worker(
    *,
    queues: str = "default,pipeline,ingest,eval",
    pool: str = "solo",
    concurrency: int = 1,
    **env: str,
) -> Iterator[str]:
    """A real `celery worker` child process on the real broker and the test database,
    consuming `queues` with `pool` (`concurrency` processes or threads), with `env` added to
    its environment; stopped on exit. Yields its node name. The caller must have the test
    database set up."""
    from config.celery import app

    node = f"test-{uuid.uuid4().hex[:8]}@localhost"
    environment = dict(
        os.environ,
        DATABASE_URL=test_database_url(),
        DJANGO_SETTINGS_MODULE="config.test_settings",
        **env,
    )
    log_path = celery_worker_log(node)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "-n",
                node,
                "-Q",
                queues,
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "INFO",
            ],
            env=environment,
            cwd=BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{log_path.read_text()[-3000:]}")
            if app.control.ping(destination=[node], timeout=0.5):
                break
        else:
            raise RuntimeError(f"celery worker did not answer:\n{log_path.read_text()[-3000:]}")
        yield node
    finally:
        process_stop(process)


@pytest.fixture
def celery_worker_process(django_db_setup, django_db_blocker) -> Iterator[str]:
    """A real `celery worker` child process (solo pool) on the real broker and the test
    database, for the test that asks for it and stopped after it: one left running would
    consume the `pipeline` tasks of every later test's messages (a browser test's widget
    ticket drafted, handed off, its stream written to) and hold locks while their tables
    are flushed.

    Tests that use it must be `django_db(transaction=True)`: the worker is another
    process and sees only committed rows. Yields the worker's node name.
    """
    with celery_worker() as node:
        yield node


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll `predicate` until it returns a truthy value; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


@pytest.fixture
def api_key_client(db):  # type: ignore[no-untyped-def]
    """Factory: an APIClient that sends a fresh API key with the given scopes."""
    from apps.accounts.services import api_key_create

    def make(scopes: tuple[str, ...] = ("read", "write"), name: str = "test") -> APIClient:
        _, key = api_key_create(name=name, scopes=list(scopes))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    return make


def collected(events: Any) -> list:
    """Every item of an async generator (e.g. a draft stream read to its end), from sync
    test code: run on an event loop of its own, as a web process would read it."""
    import asyncio

    async def read() -> list:
        return [event async for event in events]

    return asyncio.run(read())


@contextlib.contextmanager
def web_process(log_path: Path, **env: str) -> Iterator[tuple[subprocess.Popen, int]]:
    """A real web process (uvicorn serving config.asgi, as `up` and the image run it) on a
    free loopback port, on the test database, with `env` added; yields it and its port once
    /healthz answers, and stops it on exit. The caller must have the test database set up."""
    import urllib.request

    port = free_port()
    environment = dict(
        os.environ,
        DATABASE_URL=test_database_url(),
        DJANGO_SETTINGS_MODULE="config.test_settings",
        LOG_LEVEL="INFO",
        **env,
    )
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--port", str(port)],
            cwd=BASE_DIR,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{log_path.read_text()[-3000:]}")
        try:
            url = f"http://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, timeout=60)
        yield process, port
    finally:
        process_stop(process)
