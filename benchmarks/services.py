"""What benchmark runs start: a private embedded PostgreSQL with the schema migrated, processes with their
own log files, and the web site (uvicorn) on that database."""

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
from pathlib import Path

from stack.ports import free_port
from stack.postgres import EmbeddedPostgres

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


def web_server_start(
    *, port: int, database_url: str, llm_base_url: str, log: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """The site under uvicorn (ASGI) on the benchmark's database and Redis, ready on /healthz."""
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
    http_wait(f"http://127.0.0.1:{port}/healthz", web, timeout=120)
    return web
