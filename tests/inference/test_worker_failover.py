"""Killing the model worker mid-answer: a clear error, readiness says so, the
launcher restarts the engine, and the next request succeeds."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from inference.client import ClientConfig, LLMUnavailable, OpenAICompatibleModel, TextDelta, probe
from stack.ports import free_port
from tests.processes import start_process, wait_for

pytestmark = pytest.mark.slow


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _engine_process(launcher_pid: int) -> psutil.Process:
    """The vLLM API server the launcher started (it leads its own process group)."""
    children = psutil.Process(launcher_pid).children()
    assert len(children) == 1, children
    return children[0]


def test_killed_worker_fails_fast_reports_down_and_comes_back(tmp_path: Path) -> None:
    port = free_port()
    launcher = start_process(
        "own-model-worker",
        [sys.executable, "-m", "inference", "serve", "--profile", "cpu-dev", "--port", str(port)],
        env={},
        log_dir=tmp_path,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for("model worker", lambda: _health(port), timeout=900, process=launcher)
        engine = _engine_process(launcher.process.pid)

        async def stream_until_killed() -> tuple[int, float]:
            model = OpenAICompatibleModel(
                ClientConfig(
                    base_url=base_url, model="shopdesk-chat", first_token_timeout=60, total_timeout=120
                )
            )
            received = 0
            try:
                async for event in model.stream(
                    [{"role": "user", "content": "Write a long story about a lost parcel."}],
                    max_tokens=400,
                    temperature=0,
                ):
                    if isinstance(event, TextDelta):
                        received += 1
                        if received == 3:
                            killed_at = time.monotonic()
                            os.killpg(engine.pid, signal.SIGKILL)
            except LLMUnavailable:
                return received, time.monotonic() - killed_at
            finally:
                await model.close()
            raise AssertionError("the stream ended normally although the worker was killed")

        received, seconds_to_error = asyncio.run(stream_until_killed())
        assert received >= 3
        assert seconds_to_error < 30

        with pytest.raises(LLMUnavailable):
            asyncio.run(probe(base_url=base_url, api_key="", model="shopdesk-chat", timeout=5))

        wait_for("restarted model worker", lambda: _health(port), timeout=900, process=launcher)
        assert "killed by SIGKILL" in launcher.log()
        token = asyncio.run(probe(base_url=base_url, api_key="", model="shopdesk-chat", timeout=60))
        assert isinstance(token, str)
        assert _engine_process(launcher.process.pid).pid != engine.pid
    finally:
        launcher.stop()
    assert launcher.process.returncode is not None
