from __future__ import annotations

import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings

from config.celery import app as celery_app
from stack.ports import free_port
from tests import services
from tests.personas import Personas
from tests.processes import ManagedProcess, celery_worker_command, start_process, wait_for


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def redis_server() -> services.RedisServer:
    if services.SERVICES is None or services.SERVICES.redis is None:
        pytest.skip("REDIS_URL points at a server the tests do not own")
    return services.SERVICES.redis


def worker_env(database_name: str) -> dict[str, str]:
    """A worker process must use the test database pytest-django created."""
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{database_name}"
    if db.get("PASSWORD"):
        url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{database_name}"
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": url,
        "REDIS_URL": settings.REDIS_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }


def celery_ping(timeout: float = 1.0) -> list:
    """Workers that answer a ping; [] while the broker is unreachable. A fresh connection each
    time: a test that restarts Redis leaves the pooled ones broken."""
    try:
        with celery_app.connection_for_write() as connection:
            return celery_app.control.ping(timeout=timeout, connection=connection) or []
    except (OSError, redis.exceptions.RedisError):
        return []


# What the worker's tool steps (apps/tools) use: short carrier timeouts and few, quick retries, so the
# failure tests take seconds. Tests that wait on a tool call can rely on these values.
WORKER_CARRIER_TIMEOUT_SECONDS = 1.0
WORKER_CARRIER_MAX_RETRIES = 1
WORKER_TOOLS_MAX_ATTEMPTS = 2


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: None, django_db_blocker, log_dir: Path, sandbox_carrier: SandboxCarrier
) -> Iterator[ManagedProcess]:
    """A real Celery worker process on the real Redis, using the test database; its carrier is the
    sandbox carrier process."""
    from django.db import connection

    worker = start_process(
        "celery-worker",
        celery_worker_command(name="test"),
        env={
            **worker_env(connection.settings_dict["NAME"]),
            "CARRIER_API_BASE_URL": sandbox_carrier.base_url,
            "CARRIER_API_KEY": sandbox_carrier.api_key,
            "CARRIER_TIMEOUT_SECONDS": str(WORKER_CARRIER_TIMEOUT_SECONDS),
            "CARRIER_MAX_RETRIES": str(WORKER_CARRIER_MAX_RETRIES),
            "TOOLS_MAX_ATTEMPTS": str(WORKER_TOOLS_MAX_ATTEMPTS),
            "TOOLS_RETRY_BACKOFF_SECONDS": "0.2",
        },
        log_dir=log_dir,
    )
    wait_for("celery worker", lambda: bool(celery_ping()), timeout=60, process=worker)
    yield worker
    worker.stop()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def model_worker(log_dir: Path) -> Iterator[str]:
    """The real vLLM worker (cpu-dev profile, eager), shared by the session.
    Yields its OpenAI-compatible base URL."""
    if os.environ.get("LLM_BASE_URL"):
        yield os.environ["LLM_BASE_URL"]
        return
    port = free_port()
    worker = start_process(
        "model-worker",
        [sys.executable, "-m", "inference", "serve", "--profile", "cpu-dev", "--port", str(port)],
        env={},
        log_dir=log_dir,
    )
    wait_for(
        "model worker", lambda: _http_ok(f"http://127.0.0.1:{port}/health"), timeout=1200, process=worker
    )
    yield f"http://127.0.0.1:{port}/v1"
    worker.stop()


@pytest.fixture
def personas(db) -> Personas:
    return Personas()


@pytest.fixture(scope="session")
def web_server(django_db_setup: None, django_db_blocker, log_dir: Path, model_worker: str) -> Iterator[str]:
    """The real ASGI site (uvicorn) on the test database and the real model worker; yields its base URL."""
    from django.db import connection

    port = free_port()
    server = start_process(
        "web",
        [
            sys.executable, "-m", "uvicorn", "config.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--no-access-log",
        ],
        env={**worker_env(connection.settings_dict["NAME"]), "LLM_BASE_URL": model_worker},
        log_dir=log_dir,
    )  # fmt: skip
    wait_for("web server", lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=60, process=server)
    yield f"http://127.0.0.1:{port}"
    server.stop()


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download).

    Module-scoped: Playwright's sync API runs an event loop in this thread while it is
    open, which would break ``asyncio.run`` in every later test; it is closed after each
    browser test module.
    """
    from playwright.sync_api import sync_playwright

    # While it is open, Django sees that running loop and refuses ORM calls ("async
    # context"); the tests' own ORM calls are synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass(frozen=True)
class SandboxCarrier:
    base_url: str
    api_key: str
    process: ManagedProcess


@pytest.fixture(scope="session")
def sandbox_carrier(log_dir: Path) -> Iterator[SandboxCarrier]:
    """The sandbox carrier (apps/orders/sandbox_carrier.py) as a real process with the demo data's
    tracking numbers, on a free port, shared by the session."""
    port = free_port()
    api_key = "test-carrier-key"
    process = start_process(
        "sandbox-carrier",
        [sys.executable, "-m", "apps.orders.sandbox_carrier", "--port", str(port)],
        env={"CARRIER_SANDBOX_API_KEY": api_key},
        log_dir=log_dir,
    )
    wait_for(
        "sandbox carrier", lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=30, process=process
    )
    yield SandboxCarrier(base_url=f"http://127.0.0.1:{port}", api_key=api_key, process=process)
    process.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A test that used the Celery worker ends only once the tool steps it queued have finished.

    Otherwise a step still running in the worker (a handoff opening its ticket, say) holds row locks
    while the test database is flushed for the next test, and PostgreSQL resolves the two by aborting
    the flush ("deadlock detected"), which leaves rows behind for the next test. This runs after the
    test body and before any fixture teardown, while the test may still use the database.
    """
    yield
    fixtures = getattr(item, "fixturenames", ())
    marker = item.get_closest_marker("django_db")
    transactional = "transactional_db" in fixtures or bool(marker and marker.kwargs.get("transaction"))
    # Only transactional tests commit rows the worker can see, and only they end with a flush.
    if "celery_worker" not in fixtures or not transactional:
        return
    from django.apps import apps as django_apps

    if not django_apps.is_installed("apps.tools"):
        return
    from apps.tools.models import ToolCall

    deadline = time.monotonic() + 90
    unfinished = ToolCall.objects.filter(status__in=[ToolCall.Status.QUEUED, ToolCall.Status.RUNNING])
    while unfinished.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
