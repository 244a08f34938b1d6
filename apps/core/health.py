"""Readiness checks: each dependency is probed for real, concurrently, with a timeout.

Each check opens its own short-lived connection so a broken pool can't hide
behind a cached one, and a stopped service is seen the moment it is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psycopg
import redis.asyncio as aioredis
from django.conf import settings

from config.celery import app as celery_app
from inference.client import model_worker_urls, probe


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    detail: str


async def check_database() -> str:
    db = settings.DATABASES["default"]
    conn = await psycopg.AsyncConnection.connect(
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        connect_timeout=max(1, int(settings.READYZ_CHECK_TIMEOUT)),
        autocommit=True,
    )
    async with conn:
        cursor = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = await cursor.fetchone()
    if row is None:
        raise RuntimeError("the pgvector extension is not installed (run migrations)")
    return f"pgvector {row[0]}"


async def check_redis() -> str:
    client = aioredis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.READYZ_CHECK_TIMEOUT,
        socket_timeout=settings.READYZ_CHECK_TIMEOUT,
    )
    async with client:
        await client.ping()
        info = await client.info("server")
    return f"redis {info.get('redis_version', '?')}"


def _celery_ping_blocking() -> str:
    with celery_app.connection_for_write() as connection:
        # Fail at once when the broker is down instead of kombu's retry loop.
        connection.ensure_connection(max_retries=1, timeout=settings.READYZ_CHECK_TIMEOUT)
        replies = celery_app.control.ping(
            timeout=settings.READYZ_CHECK_TIMEOUT, limit=1, connection=connection
        )
    if not replies:
        raise RuntimeError("no Celery worker answered the ping")
    return f"{len(replies)} worker(s): {', '.join(name for reply in replies for name in reply)}"


async def check_celery() -> str:
    return await asyncio.to_thread(_celery_ping_blocking)


async def check_model() -> str:
    """Every model worker in ``LLM_BASE_URL`` generates a token; ready while at least one does (the
    client sends calls to the replicas that answer), with the ones that do not named."""
    urls = model_worker_urls(settings.LLM_BASE_URL)
    results = await asyncio.gather(
        *(
            probe(
                base_url=url,
                api_key=settings.LLM_API_KEY,
                model=settings.LLM_MODEL,
                timeout=settings.LLM_PROBE_TIMEOUT,
            )
            for url in urls
        ),
        return_exceptions=True,
    )
    if len(urls) == 1:
        if isinstance(results[0], BaseException):
            raise results[0]
        return f"{settings.LLM_MODEL} generated {results[0]!r}"
    down = [f"{url}: {result.__class__.__name__}: {result}" for url, result in zip(urls, results, strict=True)
            if isinstance(result, BaseException)]  # fmt: skip
    if len(down) == len(urls):
        raise RuntimeError(f"no model worker answered: {'; '.join(down)}")
    detail = f"{settings.LLM_MODEL}: {len(urls) - len(down)} of {len(urls)} model workers generated a token"
    return detail + (f"; down: {'; '.join(down)}" if down else "")


CHECKS: dict[str, Callable[[], Awaitable[str]]] = {
    "database": check_database,
    "redis": check_redis,
    "celery": check_celery,
    "model": check_model,
}


def _timeout_for(name: str) -> float:
    # The model check generates a token, which can queue behind live traffic.
    return settings.LLM_PROBE_TIMEOUT + 1 if name == "model" else settings.READYZ_CHECK_TIMEOUT + 1


async def _timed(name: str, check: Callable[[], Awaitable[str]]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), timeout=_timeout_for(name))
        ok = True
    except TimeoutError:
        ok, detail = False, f"timed out after {_timeout_for(name):.0f}s"
    except Exception as exc:  # noqa: BLE001 -- any failure of a dependency is a failed check
        ok, detail = False, f"{exc.__class__.__name__}: {exc}"[:300]
    return CheckResult(
        name=name, ok=ok, latency_ms=round((time.perf_counter() - started) * 1000, 1), detail=detail
    )


async def run_checks() -> list[CheckResult]:
    return list(await asyncio.gather(*(_timed(name, check) for name, check in CHECKS.items())))
