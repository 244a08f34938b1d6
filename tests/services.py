"""A pytest plugin (loaded with ``-p tests.services``) that starts the services
the suite needs before Django is set up: embedded PostgreSQL + pgvector and a
Redis server, each on a free port under a temporary directory. Set
DATABASE_URL / REDIS_URL to use existing servers instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from stack.ports import free_port
from stack.postgres import EmbeddedPostgres
from stack.redis import redis_server_command, wait_for_redis


@dataclass
class RedisServer:
    """A Redis the tests own, so a test may stop and restart it on the same port."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            redis_server_command(port=self.port, data_dir=self.data_dir, persist=False),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_redis(self.url, timeout=15, process=self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class TestServices:
    root: Path
    postgres: EmbeddedPostgres | None = None
    redis: RedisServer | None = None


SERVICES: TestServices | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    global SERVICES
    root = Path(tempfile.mkdtemp(prefix="shopdesk-test-"))
    root.chmod(0o755)
    SERVICES = TestServices(root=root)
    os.environ.setdefault("MEDIA_ROOT", str(root / "media"))
    if not os.environ.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(
            data_dir=root / "postgres", port=free_port(), superuser="shopdesk", database="shopdesk"
        )
        postgres.ensure_initialized()
        postgres.start()
        SERVICES.postgres = postgres
        os.environ["DATABASE_URL"] = postgres.url
    if not os.environ.get("REDIS_URL"):
        redis_server = RedisServer(port=free_port(), data_dir=root / "redis")
        redis_server.start()
        SERVICES.redis = redis_server
        os.environ["REDIS_URL"] = redis_server.url


def pytest_unconfigure(config: pytest.Config) -> None:
    if SERVICES is None:
        return
    if SERVICES.redis:
        SERVICES.redis.stop()
    if SERVICES.postgres:
        SERVICES.postgres.stop()
    shutil.rmtree(SERVICES.root, ignore_errors=True)
