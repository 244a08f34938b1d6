"""The process supervisor behind ``make run``.

Starts the stack in order -- PostgreSQL, Redis, migrations and demo data, the
model worker, the sandbox carrier, the web site, the Celery worker and beat -- waits for each to be
ready, prints every child's output as one stream with a name prefix, and on
Ctrl-C or SIGTERM stops every child (whole process groups) and then the
embedded PostgreSQL. If any child dies, everything is stopped: a half-running
stack is worse than a clear failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stack.ports import port_is_free

COLORS = ["36", "33", "35", "32", "34", "31", "96", "93"]
STOP_GRACE_SECONDS = 20.0


class StartupError(RuntimeError):
    """A clear, expected reason the stack cannot start (shown without a traceback)."""


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    expected_exit: bool = False
    color: str = "0"


@dataclass
class Supervisor:
    base_env: dict[str, str]
    cwd: Path
    children: list[Child] = field(default_factory=list)
    on_shutdown: list[Callable[[], None]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _print_lock: threading.Lock = field(default_factory=threading.Lock)

    # --- output -------------------------------------------------------------
    def log(self, name: str, line: str, color: str = "1") -> None:
        prefix = f"{name:<8}|"
        if sys.stdout.isatty():
            prefix = f"\033[{color}m{prefix}\033[0m"
        with self._print_lock:
            sys.stdout.write(f"{prefix} {line}\n")
            sys.stdout.flush()

    def say(self, line: str) -> None:
        self.log("stack", line)

    def _pump(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        for raw in iter(child.process.stdout.readline, b""):
            self.log(child.name, raw.decode("utf-8", errors="replace").rstrip("\n"), child.color)

    # --- processes ----------------------------------------------------------
    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Child:
        child = Child(name=name, command=command, env={**self.base_env, **(env or {})})
        child.color = COLORS[len(self.children) % len(COLORS)]
        child.process = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=child.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own process group: Ctrl-C reaches only us, and we stop children in order.
            start_new_session=True,
        )
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.reader.start()
        self.children.append(child)
        return child

    def run_once(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        """Run a one-shot step (migrations) with prefixed output; fail the start if it fails."""
        child = self.start(name, command, env)
        child.expected_exit = True
        assert child.process is not None
        while child.process.poll() is None:
            if self.stopping.wait(0.2):
                raise StartupError("interrupted")
        if child.reader:
            child.reader.join(timeout=5)
        self.children.remove(child)
        if child.process.returncode != 0:
            raise StartupError(f"{name} failed with exit code {child.process.returncode}")

    def wait_until(
        self, what: str, ready: Callable[[], bool], *, timeout: float, child: Child | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if child is not None and child.process is not None and child.process.poll() is not None:
                raise StartupError(f"{child.name} exited with code {child.process.returncode} while starting")
            if time.monotonic() > deadline:
                raise StartupError(f"{what} was not ready within {timeout:.0f}s")
            if self.stopping.wait(0.25):
                raise StartupError("interrupted")

    def watch(self) -> int:
        """Block until a signal or until a child exits; returns the exit code for ``make``."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                assert child.process is not None
                code = child.process.poll()
                if code is not None and not child.expected_exit:
                    self.say(f"{child.name} exited with code {code}; stopping the stack")
                    return 1
        return 0

    def stop_all(self) -> None:
        for child in reversed(self.children):
            assert child.process is not None
            if child.process.poll() is None:
                self.say(f"stopping {child.name}")
                _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in reversed(self.children):
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {STOP_GRACE_SECONDS:.0f}s; killing it")
            # Whatever the leader left behind in its group (vLLM's engine processes).
            _signal_group(child.process, signal.SIGKILL)
            if child.reader:
                child.reader.join(timeout=2)
        for callback in reversed(self.on_shutdown):
            callback()

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: object) -> None:
            if not self.stopping.is_set():
                self.say(f"received {signal.Signals(signum).name}; stopping")
            self.stopping.set()

        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def require_free_port(port: int, what: str, variable: str) -> None:
    if not port_is_free(port):
        raise StartupError(
            f"port {port} ({what}) is already in use on 127.0.0.1. Is another `make run` running? "
            f"Stop the other process, or pick another port: {variable}=<port> make run"
        )


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 -- loopback URL we built
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
