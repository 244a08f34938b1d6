"""What the application adds on top of the model worker: time to first token and output
tokens/s through the app's ``/v1/chat/completions`` against the raw vLLM worker given the
very same final prompts, at concurrency 1 and 8, in the same run.

Set-up (all private to the run): embedded PostgreSQL, a Redis, the cpu-dev model worker, the
demo shop's own policies (Lumen Home, English and Chinese) ingested in-process, an API key,
and the site under uvicorn exactly as ``make run`` serves it. The raw side gets the messages
the pipeline builds (``services.assistant_prompt``: the same retrieval, passages and
instructions), so the difference is the app's own work: authentication, rate limit, query
embedding and hybrid search, prompt building, relaying the stream, storing the answer.

Both sides use greedy decoding with the same ``max_tokens``, so they generate the same tokens.
Each prompt is sent once before measuring, so vLLM's prefix cache treats both sides alike, and
the order alternates (app first, then raw first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import openai

from benchmarks.common import summary, write_result
from benchmarks.inference import stream_request

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "apps" / "knowledge" / "demo_data" / "questions.jsonl"
KB_SLUG = "bench-shop"
MODEL = "shopdesk-chat"


def _knowledge_base_with_key() -> tuple[Any, str]:
    """The demo shop's policies, ingested in-process, and an API key for them."""
    from apps.knowledge.demo import DEMO_DATA
    from apps.knowledge.models import IngestionJob
    from apps.knowledge.services import (
        api_key_create,
        document_ingest,
        document_upload,
        knowledge_base_create,
    )

    knowledge_base = knowledge_base_create(name="bench shop", slug=KB_SLUG, language_hints=["zh", "en"])
    for path in sorted((DEMO_DATA / "policies").iterdir()):
        upload = document_upload(
            knowledge_base=knowledge_base, filename=path.name, data=path.read_bytes(), enqueue=False
        )
        document_ingest(job_id=IngestionJob.objects.get(document=upload.document).pk)
    return knowledge_base, api_key_create(knowledge_base=knowledge_base, name="benchmark").key


def _prompts(knowledge_base: Any, count: int) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Demo questions about the demo shop's policies that the assistant sends to the model
    (not answered by a rule), with the exact messages the pipeline builds for each."""
    from asgiref.sync import async_to_sync

    from apps.conversations.services import Prompt, assistant_prompt
    from apps.knowledge.demo import DEMO_DATA

    policy_docs = {path.name for path in (DEMO_DATA / "policies").iterdir()}
    lines = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen, build_ms = [], []
    for line in lines:
        if line["doc"] not in policy_docs:
            continue
        started = time.perf_counter()
        prompt = async_to_sync(assistant_prompt)(
            knowledge_base=knowledge_base, history=[], question=line["q"]
        )
        build_ms.append((time.perf_counter() - started) * 1000)
        if isinstance(prompt, Prompt):
            chosen.append({"q": line["q"], "messages": prompt.messages})
        if len(chosen) == count:
            break
    return chosen, summary(build_ms[1:])  # the first one loads the embedder


class Sides:
    def __init__(self, *, worker_url: str, app_url: str, key: str, max_tokens: int, top_p: float) -> None:
        self.raw = openai.AsyncOpenAI(base_url=worker_url, api_key="unused", max_retries=0, timeout=900)
        self.app = openai.AsyncOpenAI(base_url=f"{app_url}/v1", api_key=key, max_retries=0, timeout=900)
        self.max_tokens, self.top_p = max_tokens, top_p

    async def run(self, side: str, prompt: dict[str, Any], max_tokens: int | None = None) -> dict[str, float]:
        if side == "raw":
            client, model, messages = self.raw, MODEL, prompt["messages"]
        else:
            client, model, messages = self.app, KB_SLUG, [{"role": "user", "content": prompt["q"]}]
        return await stream_request(
            client,
            model,
            messages,
            max_tokens=max_tokens or self.max_tokens,
            fixed_length=False,
            top_p=self.top_p,
        )

    async def close(self) -> None:
        await self.raw.close()
        await self.app.close()


def _side_summary(runs: list[dict[str, float]], wall_s: float | None = None) -> dict[str, Any]:
    tokens = sum(r["tokens"] for r in runs)
    return {
        "requests": len(runs),
        "ttft_ms": summary([r["ttft_s"] * 1000 for r in runs]),
        "completion_tokens": tokens,
        # Concurrency 1: tokens over the summed request times; N: over the wall time of the batch.
        "output_tok_s": tokens / (wall_s if wall_s is not None else sum(r["total_s"] for r in runs)),
    }


async def _measure(sides: Sides, prompts: list[dict[str, Any]], *, streams: int) -> dict[str, Any]:
    for prompt in prompts:  # fill the prefix cache for both sides alike; the app's first call loads e5
        await sides.run("app", prompt, max_tokens=1)
    await sides.run("raw", prompts[0], max_tokens=1)

    single: dict[str, list[dict[str, float]]] = {"app": [], "raw": []}
    added_ms = []
    for index, prompt in enumerate(prompts):
        order = ("app", "raw") if index % 2 == 0 else ("raw", "app")
        results = {side: await sides.run(side, prompt) for side in order}
        for side, result in results.items():
            single[side].append(result)
        added_ms.append((results["app"]["ttft_s"] - results["raw"]["ttft_s"]) * 1000)

    batch = [prompts[i % len(prompts)] for i in range(streams)]
    concurrent: dict[str, list[dict[str, float]]] = {"app": [], "raw": []}
    walls: dict[str, float] = {"app": 0.0, "raw": 0.0}
    for order in (("raw", "app"), ("app", "raw")):
        for side in order:
            started = time.perf_counter()
            concurrent[side] += await asyncio.gather(*(sides.run(side, p) for p in batch))
            walls[side] += time.perf_counter() - started

    one = {side: _side_summary(runs) for side, runs in single.items()}
    many = {side: _side_summary(concurrent[side], walls[side]) for side in ("app", "raw")}
    return {
        "concurrency_1": {
            **one,
            "added_ttft_ms": summary(added_ms),
            "throughput_ratio": one["app"]["output_tok_s"] / one["raw"]["output_tok_s"],
        },
        f"concurrency_{streams}": {
            **many,
            "streams": streams,
            "added_ttft_ms_p50": many["app"]["ttft_ms"]["p50"] - many["raw"]["ttft_ms"]["p50"],
            "throughput_ratio": many["app"]["output_tok_s"] / many["raw"]["output_tok_s"],
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.app_overhead")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args(argv)

    from benchmarks.services import benchmark_database, cpu_model_worker, local_redis, web_server

    logs = Path(tempfile.mkdtemp(prefix="shopdesk-bench-logs-"))
    with local_redis(logs), cpu_model_worker(logs) as worker, benchmark_database() as database_url:
        from django.conf import settings

        knowledge_base, key = _knowledge_base_with_key()
        prompts, build_ms = _prompts(knowledge_base, args.questions)
        with web_server(
            database_url=database_url,
            llm_base_url=worker.url,
            log=logs / "web.log",
            env={"CHAT_API_REQUESTS_PER_KEY_PER_MINUTE": "100000"},
        ) as app_url:
            worker.wait_ready()
            sides = Sides(
                worker_url=worker.url,
                app_url=app_url,
                key=key,
                max_tokens=args.max_tokens,
                top_p=settings.CHAT_TOP_P,
            )

            async def measure() -> dict[str, Any]:
                try:
                    return await _measure(sides, prompts, streams=args.streams)
                finally:
                    await sides.close()

            result = asyncio.run(measure())
    path = write_result(
        "app_overhead",
        {
            "profile": "cpu-dev",
            "questions": len(prompts),
            "max_tokens": args.max_tokens,
            "in_process_retrieval_and_prompt_ms": build_ms,
            **result,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
