"""Model worker throughput: single-stream decode speed, aggregate speed at N
concurrent streams (continuous batching), time to first token, and peak memory.

The baseline is the same worker's single stream, measured in the same run:
the report gives aggregate/single as the batching gain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai

from benchmarks.common import PeakMemory, summary, wait_for_worker_health, write_result
from stack.ports import free_port

PROMPT = (
    "You are a customer-service assistant for an online home-goods shop. "
    "Explain to a customer, in a friendly way, how returns and refunds work, step by step."
)


def _decode(data: bytes) -> str:
    # The demo policies are deliberately in several encodings (UTF-8, UTF-16, GB18030).
    for encoding in ("utf-8-sig", "utf-16", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def assistant_prompts(
    count: int, *, passages_per_prompt: int = 8, seed: int = 0
) -> list[list[dict[str, str]]]:
    """Prompts shaped like the assistant's real ones (system instruction, numbered policy passages as
    quoted data, the customer's question; ~1–2k tokens), built by the same ``build_messages`` the
    assistant uses, from the demo policies and support corpora, in English and Chinese."""
    from apps.conversations.prompting import Passage, build_messages, detect_language

    demo = Path(__file__).resolve().parent.parent / "apps" / "knowledge" / "demo_data"
    paragraphs: list[tuple[str, str]] = []
    sources = [*sorted((demo / "policies").iterdir()), demo / "corpora" / "tau-bench-retail" / "wiki.md"]
    for path in sources:
        text = re.sub(r"<[^>]+>", " ", _decode(path.read_bytes()))
        block = ""
        for paragraph in re.split(r"\n\s*\n", text):
            block = f"{block}\n\n{paragraph.strip()}".strip()
            if len(block) >= 500:
                paragraphs.append((path.name, block[:900]))
                block = ""
        if block:
            paragraphs.append((path.name, block[:900]))
    questions = [
        json.loads(line)["q"]
        for line in (demo / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rng = random.Random(seed)
    prompts = []
    for index in range(count):
        question = questions[index % len(questions)]
        chosen = rng.sample(paragraphs, min(passages_per_prompt, len(paragraphs)))
        passages = [
            Passage(n=n, chunk_id=n, document=name, heading_path=[], text=text)
            for n, (name, text) in enumerate(chosen, start=1)
        ]
        prompts.append(
            build_messages(
                system_prompt="",
                passages=passages,
                history=[],
                question=question,
                language=detect_language(question),
            )
        )
    return prompts


def _first_output(chunk: Any) -> bool:
    """Whether a streamed chunk carries generated text (answer or, for reasoning models, reasoning)."""
    if not chunk.choices:
        return False
    delta = chunk.choices[0].delta
    extra = delta.model_extra or {}
    return bool(delta.content or extra.get("reasoning_content") or extra.get("reasoning"))


async def stream_request(
    client: openai.AsyncOpenAI,
    model: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    fixed_length: bool = True,
    **params: Any,
) -> dict[str, float]:
    """One streamed chat completion, timed from the client: first token, time per output token after it,
    tokens. ``fixed_length`` makes a vLLM worker generate exactly ``max_tokens`` (its ``ignore_eos``)."""
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    if fixed_length:
        params["extra_body"] = {"ignore_eos": True, "min_tokens": max_tokens}
    stream = await client.chat.completions.create(
        model=model,
        messages=messages,  # type: ignore[arg-type]
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        **params,
    )
    prompt_tokens = 0
    async for chunk in stream:
        if first is None and _first_output(chunk):
            first = time.perf_counter()
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
            prompt_tokens = chunk.usage.prompt_tokens
    ended = time.perf_counter()
    if first is None:
        raise RuntimeError("the stream carried no generated text")
    return {
        "ttft_s": first - started,
        "tpot_s": (ended - first) / (tokens - 1) if tokens > 1 else float("nan"),
        "decode_tok_s": (tokens - 1) / (ended - first) if tokens > 1 and ended > first else float("nan"),
        "tokens": tokens,
        "prompt_tokens": prompt_tokens,
        "total_s": ended - started,
    }


async def _closed_loop(
    clients: list[openai.AsyncOpenAI],
    model: str,
    prompts: list[list[dict[str, str]]],
    max_tokens: int,
    streams: int,
    queue: list[int],
    rows: list[dict[str, float]],
    errors: list[str],
) -> None:
    async def stream_loop() -> None:
        while queue:
            index = queue.pop()
            client = clients[index % len(clients)]
            try:
                rows.append(
                    await stream_request(client, model, prompts[index % len(prompts)], max_tokens=max_tokens)
                )
            except (openai.OpenAIError, RuntimeError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])

    await asyncio.gather(*(stream_loop() for _ in range(streams)))


async def measure_levels(
    base_urls: list[str],
    model: str,
    *,
    levels: list[int],
    prompts: list[list[dict[str, str]]],
    max_tokens: int,
    requests_per_stream: int = 2,
) -> list[dict[str, Any]]:
    """Closed-loop load at each concurrency level: ``level`` streams, each sending
    ``requests_per_stream`` requests back to back, spread round-robin over ``base_urls``
    (one URL: one server; several: data-parallel replicas). Reports output tokens/s over the
    level's wall time and per-request TTFT and TPOT (time per output token after the first)."""
    clients = [
        openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=1800) for url in base_urls
    ]
    results = []
    offset = 0  # every request gets a prompt no earlier request used: no prefix-cache hits beyond the shared system text
    try:
        for level in levels:
            count = max(level * requests_per_stream, 4)
            rows: list[dict[str, float]] = []
            errors: list[str] = []
            started = time.perf_counter()
            await _closed_loop(
                clients, model, prompts, max_tokens, level, list(range(offset, offset + count)), rows, errors
            )
            offset += count
            wall = time.perf_counter() - started
            results.append(
                {
                    "concurrency": level,
                    "requests": len(rows),
                    "errors": len(errors),
                    "error_samples": errors[:3],
                    "wall_s": wall,
                    "output_tok_s": sum(r["tokens"] for r in rows) / wall,
                    "ttft_s": summary([r["ttft_s"] for r in rows]),
                    "tpot_s": summary([r["tpot_s"] for r in rows]),
                    "prompt_tokens": summary([r["prompt_tokens"] for r in rows]),
                }
            )
            print(
                f"  c={level:<4} {results[-1]['output_tok_s']:8.0f} tok/s  "
                f"TTFT p50 {results[-1]['ttft_s']['p50'] * 1000:7.1f} ms  "
                f"TPOT p50 {results[-1]['tpot_s']['p50'] * 1000:6.2f} ms  errors {len(errors)}",
                flush=True,
            )
    finally:
        for client in clients:
            await client.close()
    return results


async def _one_stream(client: openai.AsyncOpenAI, model: str, max_tokens: int) -> dict[str, float]:
    return await stream_request(client, model, [{"role": "user", "content": PROMPT}], max_tokens=max_tokens)


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
