"""`make run`'s supervisor end to end: the whole stack on real services, twice on the same data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stack.ports import free_ports, port_is_free

BASE_DIR = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.slow


def _readyz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


def _our_processes(marker: str) -> list[str]:
    """Command lines of live processes mentioning this run's private directory or ports."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker.encode() in environ:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _start(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 -- closed when the test ends
    return subprocess.Popen(
        [sys.executable, "-m", "stack", "run"], cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _wait_ready(port: int, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()[-5000:]
        status, body = _readyz(port)
        if status == 200:
            return body
        time.sleep(2)
    raise AssertionError(f"/readyz not 200 within {timeout}s: {body}\n{log_path.read_text()[-5000:]}")


def _interrupt(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=90)


def test_make_run_starts_everything_stops_cleanly_and_reuses_its_data(
    tmp_path: Path, model_worker: str
) -> None:
    """The whole stack from its own embedded PostgreSQL and Redis. The model worker is the session's
    (``LLM_BASE_URL``): a second CPU vLLM beside it would not fit the CI machine's memory; the
    supervisor's own start of the worker is the same launcher the model-worker tests run."""
    var_dir = tmp_path / "var"
    names = ("PORT", "EMBEDDED_PG_PORT", "EMBEDDED_REDIS_PORT", "MODEL_WORKER_PORT", "CARRIER_SANDBOX_PORT")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "LLM_BASE_URL",
            "CARRIER_API_BASE_URL",
            "CARRIER_API_KEY",
            "DJANGO_SETTINGS_MODULE",
        }
    }
    env.update({name: str(port) for name, port in ports.items()})
    env["VAR_DIR"] = str(var_dir)
    env["LLM_BASE_URL"] = model_worker
    log_path = tmp_path / "stack.log"

    first = _start(env, log_path)
    try:
        body = _wait_ready(ports["PORT"], first, log_path, timeout=1500)
        assert all(check["ok"] for check in body["checks"].values()), body
        carrier = f"http://127.0.0.1:{ports['CARRIER_SANDBOX_PORT']}/v1/tracking/SF1402938475610"
        request = urllib.request.Request(carrier, headers={"X-API-Key": "sandbox-key"})
        with urllib.request.urlopen(request, timeout=10) as response:  # the demo's seed parcel
            assert json.loads(response.read())["status"] == "in_transit"
    finally:
        first_code = _interrupt(first)
    assert first_code == 0
    log = log_path.read_text()
    assert "created admin account 'demo-admin' with password" in log
    assert "demo orders: 5 customers, 10 orders, 9 shipments" in log
    assert "stopping PostgreSQL" in log
    assert _our_processes(str(var_dir)) == []
    assert all(port_is_free(port) for port in ports.values())

    second = _start(env, log_path)
    try:
        _wait_ready(ports["PORT"], second, log_path, timeout=900)
    finally:
        second_code = _interrupt(second)
    assert second_code == 0
    second_log = log_path.read_text()[len(log) :]
    assert "admin account 'demo-admin' exists" in second_log
    assert "created a new PostgreSQL cluster" not in second_log
    assert _our_processes(str(var_dir)) == []
