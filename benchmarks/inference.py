"""Model worker throughput: single-stream decode speed, aggregate speed at N
concurrent streams (continuous batching), time to first token, and peak memory.

The baseline is the same worker's single stream, measured in the same run:
the report gives aggregate/single as the batching gain.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import openai

from benchmarks.common import PeakMemory, summary, wait_for_worker_health, write_result
from stack.ports import free_port

PROMPT = (
    "You are a customer-service assistant for an online home-goods shop. "
    "Explain to a customer, in a friendly way, how returns and refunds work, step by step."
)


async def _one_stream(client: openai.AsyncOpenAI, model: str, max_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True, "min_tokens": max_tokens},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter()
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    ended = time.perf_counter()
    assert first is not None
    return {
        "ttft_s": first - started,
        "tokens": tokens,
        "total_s": ended - started,
        "decode_tok_s": (tokens - 1) / (ended - first) if ended > first else float("nan"),
    }


async def _measure(
    base_url: str, model: str, *, streams: int, max_tokens: int, repeats: int
) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
    try:
        await _one_stream(client, model, 8)  # warm-up
        single = [await _one_stream(client, model, max_tokens) for _ in range(repeats)]
        started = time.perf_counter()
        concurrent = await asyncio.gather(*(_one_stream(client, model, max_tokens) for _ in range(streams)))
        wall = time.perf_counter() - started
    finally:
        await client.close()
    single_tok_s = sum(r["tokens"] for r in single) / sum(r["total_s"] for r in single)
    aggregate_tok_s = sum(r["tokens"] for r in concurrent) / wall
    return {
        "max_tokens": max_tokens,
        "single_stream": {
            "decode_tok_s": summary([r["decode_tok_s"] for r in single]),
            "end_to_end_tok_s": single_tok_s,
            "ttft_s": summary([r["ttft_s"] for r in single]),
        },
        "concurrent": {
            "streams": streams,
            "aggregate_tok_s": aggregate_tok_s,
            "ttft_s": summary([r["ttft_s"] for r in concurrent]),
            "per_stream_decode_tok_s": summary([r["decode_tok_s"] for r in concurrent]),
        },
        "batching_gain": aggregate_tok_s / single_tok_s,
    }


def run_profile(profile: str, *, streams: int, max_tokens: int, repeats: int) -> dict[str, Any]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "inference", "serve", "--profile", profile, "--port", str(port)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with PeakMemory(process.pid) as memory:
            start_s = wait_for_worker_health(port, process, timeout=1800)
            result = asyncio.run(
                _measure(
                    f"http://127.0.0.1:{port}/v1",
                    "shopdesk-chat",
                    streams=streams,
                    max_tokens=max_tokens,
                    repeats=repeats,
                )
            )
        return {
            "profile": profile,
            "start_to_health_s": start_s,
            "peak_rss_gib": memory.peak_bytes / 2**30,
            **result,
        }
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inference")
    parser.add_argument("--profiles", nargs="+", default=["cpu-dev", "cpu-moe-tp2"])
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    results = [
        run_profile(profile, streams=args.streams, max_tokens=args.max_tokens, repeats=args.repeats)
        for profile in args.profiles
    ]
    path = write_result("inference", {"profiles": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
