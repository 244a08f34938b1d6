"""Real processes the tests start: a Celery worker and the model worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    command: list[str] | None = None
    env: dict[str, str] | None = None

    def restart(self) -> None:
        """Start the same command again (after ``stop``), appending to the same log."""
        assert self.command is not None and self.env is not None
        self.process = start_process(
            self.name, self.command, env=self.env, log_dir=self.log_path.parent
        ).process

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait(timeout=10)


def start_process(name: str, command: list[str], *, env: dict[str, str], log_dir: Path) -> ManagedProcess:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return ManagedProcess(name=name, process=process, log_path=log_path, command=command, env=env)


def wait_for(
    what: str, condition: Callable[[], bool], *, timeout: float, process: ManagedProcess | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.process.poll() is not None:
            raise RuntimeError(
                f"{process.name} exited ({process.process.returncode}):\n{process.log()[-4000:]}"
            )
        if time.monotonic() > deadline:
            tail = process.log()[-4000:] if process else ""
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s\n{tail}")
        time.sleep(0.25)


def celery_worker_command(*, name: str, concurrency: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-I",
        "tests.celery_tasks",
        "-l",
        "INFO",
        "-c",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
