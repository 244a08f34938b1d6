"""The quantized MoE path for real: a tiny int8 W8A8 Qwen3-MoE served with
tensor parallelism 2 on the CPU, compared with the same checkpoint at TP=1."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import openai
import pytest

from stack.ports import free_port
from tests.processes import start_process, wait_for

pytestmark = pytest.mark.slow

PROMPTS = [
    "The customer asked about the return policy",
    "顾客询问物流信息",
    "Order DS20240501 shipped on",
    "Refunds are issued within",
]


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _serve_and_complete(profile: str, log_dir: Path) -> tuple[list[list[str]], str]:
    port = free_port()
    worker = start_process(
        f"worker-{profile}",
        [sys.executable, "-m", "inference", "serve", "--profile", profile, "--port", str(port)],
        env={},
        log_dir=log_dir,
    )
    try:
        wait_for(profile, lambda: _health(port), timeout=900, process=worker)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        outputs = []
        for prompt in PROMPTS:
            completion = client.completions.create(
                model="shopdesk-chat", prompt=prompt, max_tokens=16, temperature=0, logprobs=1
            )
            outputs.append(completion.choices[0].logprobs.tokens)
        chat = client.chat.completions.create(
            model="shopdesk-chat",
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=8,
            temperature=0,
        )
        assert chat.choices[0].message.content is not None
        assert chat.usage.completion_tokens > 0
    finally:
        worker.stop()
    return outputs, worker.log()


def test_int8_moe_at_tp2_loads_int8_kernels_and_matches_tp1(tmp_path: Path) -> None:
    tp2_tokens, tp2_log = _serve_and_complete("cpu-moe-tp2", tmp_path)
    assert "tensor_parallel_size=2" in tp2_log
    assert "CompressedTensorsW8A8Int8" in tp2_log
    assert "CPUInt8ScaledMMLinearKernel" in tp2_log
    assert "MoE" in tp2_log
    assert all(len(tokens) == 16 for tokens in tp2_tokens)

    tp1_tokens, tp1_log = _serve_and_complete("cpu-moe-tp1", tmp_path)
    assert "CompressedTensorsW8A8Int8" in tp1_log
    assert tp2_tokens == tp1_tokens
