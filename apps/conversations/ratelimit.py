"""Fixed-window request limits in Redis, per visitor and per client IP."""

from __future__ import annotations

import time

import redis.asyncio as aioredis
from django.conf import settings


async def allow(*, key: str, limit: int, window_seconds: int = 60) -> bool:
    """True while ``key`` has made at most ``limit`` requests in the current window."""
    bucket = f"ratelimit:{key}:{int(time.time() // window_seconds)}"
    # A new connection per check, on purpose: a kept client's pooled connection failed the MULTI/EXEC
    # pipeline after a Redis restart ("Connection closed by server") instead of reconnecting.
    client = aioredis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    async with client:
        async with client.pipeline(transaction=True) as pipe:
            count, _ = await pipe.incr(bucket).expire(bucket, window_seconds * 2).execute()
    return int(count) <= limit
