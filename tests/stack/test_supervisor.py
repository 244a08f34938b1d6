"""The process supervisor behind `make run`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from stack.ports import free_port, free_ports

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def test_a_port_already_taken_gives_a_clear_message_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "stack", "run"],
            cwd=BASE_DIR,
            env={**os.environ, "PORT": str(port), "VAR_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {port} (web site) is already in use" in result.stdout
    assert "PORT=<port> make run" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(64)
    assert len(set(ports)) == 64
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
