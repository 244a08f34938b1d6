from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.ports import free_ports
from tests.conftest import _http_ok, worker_env
from tests.processes import start_process, wait_for


@pytest.fixture(scope="module")
def web_server_model_down(django_db_setup: None, django_db_blocker, log_dir: Path) -> Iterator[str]:
    """The real site (uvicorn) on the test database with ``LLM_BASE_URL`` pointing at a port
    where nothing listens: the model worker is down. Yields its base URL."""
    from django.db import connection

    port, dead_port = free_ports(2)
    server = start_process(
        "web-model-down",
        [
            sys.executable, "-m", "uvicorn", "config.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--no-access-log",
        ],
        env={
            **worker_env(connection.settings_dict["NAME"]),
            "LLM_BASE_URL": f"http://127.0.0.1:{dead_port}/v1",
        },
        log_dir=log_dir,
    )  # fmt: skip
    wait_for("web server", lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=60, process=server)
    yield f"http://127.0.0.1:{port}"
    server.stop()
