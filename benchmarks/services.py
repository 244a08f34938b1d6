"""What benchmark runs start: a private embedded PostgreSQL with the schema migrated, a throwaway Redis, the
CPU model worker, processes with their own log files, and the web site (uvicorn) on that database. The
context managers stop what they started, also when a start fails."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stack.ports import free_port
from stack.postgres import EmbeddedPostgres
from stack.redis import redis_server_command, wait_for_redis

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def benchmark_database() -> Iterator[str]:
    """Start PostgreSQL + pgvector in a temporary directory, set up Django on it, migrate."""
    root = Path(tempfile.mkdtemp(prefix="shopdesk-bench-"))
    root.chmod(0o755)
    postgres = EmbeddedPostgres(
        data_dir=root / "postgres", port=free_port(), superuser="shopdesk", database="bench"
    )
    postgres.ensure_initialized()
    postgres.start()
    try:
        os.environ["DATABASE_URL"] = postgres.url
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:9/0")
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
        os.environ["MEDIA_ROOT"] = str(root / "media")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        yield postgres.url
    finally:
        from django.db import connections

        connections.close_all()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


def process_start(
    command: list[str], *, env: dict[str, str] | None = None, log: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group, output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def process_stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def http_wait(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer")


@contextlib.contextmanager
def local_redis(logs: Path) -> Iterator[str]:
    """A Redis without persistence; ``REDIS_URL`` points at it for this process and what it starts."""
    port = free_port()
    process = process_start(
        redis_server_command(port=port, data_dir=logs / "redis", persist=False), log=logs / "redis.log"
    )
    url = os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for_redis(url, timeout=15, process=process)
        yield url
    finally:
        process_stop(process)


@dataclass
class ModelWorker:
    url: str
    process: subprocess.Popen[bytes] | None  # None: a worker the benchmark did not start

    def wait_ready(self) -> None:
        if self.process is not None:
            from benchmarks.common import wait_for_worker_health

            port = int(self.url.rsplit(":", 1)[1].split("/")[0])
            wait_for_worker_health(port, self.process, timeout=1800)


@contextlib.contextmanager
def cpu_model_worker(
    logs: Path,
    *,
    base_url: str | None = None,
    settings: dict[str, str] | None = None,
    log_name: str = "model-worker.log",
) -> Iterator[ModelWorker]:
    """The cpu-dev model worker, starting (it loads while the caller sets up the rest; ``wait_ready``
    waits for it), or the running one at ``base_url``; ``settings`` override engine settings of the
    profile (``python -m inference serve --set``)."""
    if base_url is not None:
        yield ModelWorker(base_url, None)
        return
    port = free_port()
    command = [sys.executable, "-m", "inference", "serve", "--profile", "cpu-dev", "--port", str(port)]
    for name, value in (settings or {}).items():
        command += ["--set", f"{name}={value}"]
    process = process_start(command, log=logs / log_name)
    try:
        yield ModelWorker(f"http://127.0.0.1:{port}/v1", process)
    finally:
        process_stop(process)


@contextlib.contextmanager
def web_server(*, database_url: str, llm_base_url: str, log: Path, env: dict[str, str]) -> Iterator[str]:
    """The site under uvicorn (ASGI) on the benchmark's database and Redis, ready on /healthz; yields its
    base URL."""
    port = free_port()
    web = process_start(
        [
            sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
            "--port", str(port), "--lifespan", "off", "--no-access-log",
        ],
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url,
            "REDIS_URL": os.environ["REDIS_URL"],
            "MEDIA_ROOT": os.environ["MEDIA_ROOT"],
            "LLM_BASE_URL": llm_base_url,
            "LOG_LEVEL": "WARNING",
            **env,
        },
        log=log,
    )  # fmt: skip
    try:
        http_wait(f"http://127.0.0.1:{port}/healthz", web, timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        process_stop(web)
