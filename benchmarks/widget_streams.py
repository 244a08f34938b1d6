"""N widget conversations at once, each streaming its answer through the real web server.

What a shop sees when many customers ask at the same moment: every visitor starts a
conversation (``POST /api/widget/conversations/``) and sends one demo question
(``POST …/send/``, server-sent events), all at once. Measured from the client: errors (a
non-2xx answer, a broken stream, no final message, or the friendly "model unavailable"
reply), time to the first streamed token, the whole turn, and how many event streams were
open at the same time. The model worker is the bottleneck on a CPU, so answers are kept
short (``CHAT_MAX_TOKENS``) and the first-token timeout is raised to the batch's length: the
question is whether the web tier holds N streams without errors, not how fast 2 cores decode.

It also times the query rewrite (one constrained-output call for a follow-up with history)
alone, against the same worker, since that is the latency a follow-up question adds.

Set-up (private to the run): embedded PostgreSQL, a Redis, the demo shop's policies ingested
in-process, the site under uvicorn, and the cpu-dev model worker (or ``--llm-base-url`` to use
one that is already running, so two CPU workers never run at once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.app_overhead import QUESTIONS, _knowledge_base_with_key
from benchmarks.common import summary, write_result

KB_SLUG = "bench-shop"
REWRITE_CASES = [
    (
        [("user", "How long do I have to return a lamp?"), ("assistant", "30 days from delivery [1].")],
        "And a sofa?",
    ),
    ([("user", "积分可以换成现金吗？"), ("assistant", "积分不能直接兑换现金 [1]。")], "那有效期呢？"),
    (
        [("user", "Do you deliver to Shanghai?"), ("assistant", "Yes, in 2 to 4 days [1].")],
        "How much does it cost?",
    ),
    ([("user", "保修期多久？"), ("assistant", "台灯保修两年 [1]。")], "灯泡呢？"),
]


class Streams:
    """How many event streams are open now, and the most at once."""

    def __init__(self) -> None:
        self.open = 0
        self.peak = 0

    def opened(self) -> None:
        self.open += 1
        self.peak = max(self.peak, self.open)

    def closed(self) -> None:
        self.open -= 1


async def _conversation(client: httpx.AsyncClient, question: str, streams: Streams) -> dict[str, Any]:
    started = time.perf_counter()
    created = await client.post("/api/widget/conversations/", json={"kb": KB_SLUG, "language": "en"})
    if created.status_code != 201:
        return {"error": f"create {created.status_code}"}
    body = created.json()
    first: float | None = None
    final: dict[str, Any] | None = None
    async with client.stream(
        "POST",
        f"/api/widget/conversations/{body['id']}/send/",
        json={"text": question},
        headers={"Authorization": f"Bearer {body['token']}"},
    ) as response:
        if response.status_code != 200:
            return {"error": f"send {response.status_code}"}
        streams.opened()
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line.removeprefix("data: "))
                if event["type"] == "delta" and first is None:
                    first = time.perf_counter()
                elif event["type"] == "message":
                    final = event
        finally:
            streams.closed()
    ended = time.perf_counter()
    if final is None:
        return {"error": "no final message"}
    if final["outcome"] == "model_unavailable":
        return {"error": "model unavailable"}
    return {
        "outcome": final["outcome"],
        # A rule's answer (low confidence, a person) arrives whole: its first token is the message.
        "ttft_s": (first or ended) - started,
        "total_s": ended - started,
    }


async def _run(base_url: str, questions: list[str], *, streams: int) -> dict[str, Any]:
    counter = Streams()
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(1800), limits=limits) as client:
        # Warm-up: load the embedder in the web process before the clock starts.
        await _conversation(client, questions[0], counter)
        counter.peak = 0
        started = time.perf_counter()
        results = await asyncio.gather(
            *(_conversation(client, questions[i % len(questions)], counter) for i in range(streams)),
            return_exceptions=True,
        )
        wall_s = time.perf_counter() - started
    rows = [r if isinstance(r, dict) else {"error": f"{type(r).__name__}: {r}"} for r in results]
    ok = [r for r in rows if "error" not in r]
    errors: dict[str, int] = {}
    for row in rows:
        if "error" in row:
            errors[row["error"]] = errors.get(row["error"], 0) + 1
    outcomes: dict[str, int] = {}
    for row in ok:
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
    return {
        "streams": streams,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "outcomes": outcomes,
        "ttft_s": summary([r["ttft_s"] for r in ok]),
        "turn_s": summary([r["total_s"] for r in ok]),
        "total_s": wall_s,
        "open_streams_peak": counter.peak,
    }


def _rewrite_latency(worker_url: str) -> dict[str, Any]:
    """The query rewrite alone, one call at a time on an idle worker (what a follow-up adds)."""
    from django.conf import settings

    from apps.conversations.services import search_query_rewrite
    from inference.client import ClientConfig, OpenAICompatibleModel

    async def run() -> tuple[list[float], list[str]]:
        model = OpenAICompatibleModel(ClientConfig(base_url=worker_url, model=settings.LLM_MODEL))
        times, queries = [], []
        try:
            for history, question in REWRITE_CASES * 2:
                started = time.perf_counter()
                queries.append(
                    await search_query_rewrite(history=history, question=question, chat_model=model)
                )
                times.append((time.perf_counter() - started) * 1000)
        finally:
            await model.close()
        return times, queries

    times, queries = asyncio.run(run())
    return {
        "ms": summary(times[1:]),  # the first call warms the worker's grammar cache
        "examples": [
            {"question": q, "query": r}
            for (_, q), r in zip(REWRITE_CASES, queries[: len(REWRITE_CASES)], strict=True)
        ],
        "max_tokens": settings.CHAT_QUERY_REWRITE_MAX_TOKENS,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.widget_streams")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=16, help="CHAT_MAX_TOKENS of the web server")
    parser.add_argument("--llm-base-url", help="use this running model worker instead of starting one")
    # Under ASGI every request runs its database work in a thread of its own, so a persistent
    # connection (the default 60 s) outlives its request: 100 visitors left 100 connections
    # open and PostgreSQL refused the rest ("too many clients"). 0 closes each at the request's end.
    parser.add_argument("--conn-max-age", type=int, default=0, help="DATABASE_CONN_MAX_AGE of the web server")
    # A bounded pool (what the web container runs with) makes a burst wait for a connection instead.
    parser.add_argument(
        "--pool", type=int, default=20, help="DATABASE_POOL_MAX_SIZE of the web server (0: off)"
    )
    args = parser.parse_args(argv)

    from benchmarks.services import benchmark_database, cpu_model_worker, local_redis, web_server

    logs = Path(tempfile.mkdtemp(prefix="shopdesk-bench-logs-"))
    with (
        local_redis(logs),
        cpu_model_worker(logs, base_url=args.llm_base_url) as worker,
        benchmark_database() as database_url,
    ):
        _knowledge_base_with_key()
        questions = [
            json.loads(line)["q"]
            for line in QUESTIONS.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        with web_server(
            database_url=database_url,
            llm_base_url=worker.url,
            log=logs / "web.log",
            env={
                "CHAT_MAX_TOKENS": str(args.max_tokens),
                # The batch queues at the worker: the last stream's first token comes late.
                "LLM_FIRST_TOKEN_TIMEOUT": "1200",
                "LLM_TOTAL_TIMEOUT": "1800",
                # One client address for every visitor: the per-IP limits would refuse them.
                "CHAT_CREATE_PER_IP_PER_MINUTE": "100000",
                "CHAT_MESSAGES_PER_IP_PER_MINUTE": "100000",
                "DATABASE_CONN_MAX_AGE": str(args.conn_max_age),
                "DATABASE_POOL_MAX_SIZE": str(args.pool),
            },
        ) as app_url:
            worker.wait_ready()
            result = asyncio.run(_run(app_url, questions, streams=args.streams))
            rewrite = _rewrite_latency(worker.url)
    path = write_result(
        "widget_streams",
        {
            "profile": "cpu-dev",
            "max_tokens": args.max_tokens,
            "web_conn_max_age": args.conn_max_age,
            "web_pool_max_size": args.pool,
            **result,
            "query_rewrite": rewrite,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
