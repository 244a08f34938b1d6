"""Tasks that exist only for the test suite's Celery worker (loaded with ``-I``).

They record every attempt in Redis, so a test can see how often and when a
task really ran inside the worker process.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings

from apps.core.tasks import PermanentTaskError, TransientTaskError, project_task


def _attempts_key(key: str) -> str:
    return f"test:attempts:{key}"


def _record_attempt(key: str, retries: int) -> int:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.rpush(_attempts_key(key), f"{retries}:{time.time()}")
    return client.llen(_attempts_key(key))


@project_task(name="tests.always_invalid", idempotent=True, retry_backoff_base=0.2)
def always_invalid(self, key: str) -> None:
    _record_attempt(key, self.request.retries)
    raise PermanentTaskError("the input can never be processed")


@project_task(name="tests.flaky", idempotent=True, retry_backoff_base=0.5, max_retries=4)
def flaky(self, key: str, failures: int) -> None:
    attempts = _record_attempt(key, self.request.retries)
    if attempts <= failures:
        raise TransientTaskError(f"passing fault {attempts}")
    redis.Redis.from_url(settings.REDIS_URL).set(f"test:done:{key}", "1")
