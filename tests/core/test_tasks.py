"""The project base task, run by a real Celery worker through the real Redis."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from django.conf import settings

from apps.core.tasks import project_task, retry_countdown
from tests.celery_tasks import always_invalid, flaky

pytestmark = pytest.mark.django_db(transaction=True)


def _attempts(key: str) -> list[tuple[int, float]]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    rows = [item.decode().split(":") for item in client.lrange(f"test:attempts:{key}", 0, -1)]
    return [(int(retries), float(stamp)) for retries, stamp in rows]


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the worker"
        time.sleep(0.1)


def test_listed_error_is_not_retried(celery_worker) -> None:
    key = uuid.uuid4().hex
    always_invalid.delay(key)
    _wait(lambda: len(_attempts(key)) >= 1, timeout=30)
    # Longer than the whole backoff schedule this task would use if it retried.
    time.sleep(3)
    assert [retries for retries, _ in _attempts(key)] == [0]
    assert "PermanentTaskError" in celery_worker.log()


def test_passing_fault_is_retried_with_growing_backoff(celery_worker) -> None:
    key = uuid.uuid4().hex
    flaky.delay(key, failures=2)
    client = redis.Redis.from_url(settings.REDIS_URL)
    _wait(lambda: client.get(f"test:done:{key}") is not None, timeout=60)
    attempts = _attempts(key)
    assert [retries for retries, _ in attempts] == [0, 1, 2]
    first_gap = attempts[1][1] - attempts[0][1]
    second_gap = attempts[2][1] - attempts[1][1]
    # base 0.5 s: the first retry waits within [0.25, 0.5] s, the second within [0.5, 1.0] s.
    assert first_gap >= 0.25
    assert second_gap >= 0.5


def test_retry_countdown_grows_and_is_capped() -> None:
    for retries in range(8):
        ceiling = min(60.0, 2.0 * 2**retries)
        for _ in range(50):
            assert ceiling / 2 <= retry_countdown(retries=retries, base=2.0, maximum=60.0) <= ceiling


def test_idempotent_tasks_ack_late_and_others_do_not() -> None:
    assert always_invalid.acks_late and always_invalid.reject_on_worker_lost
    assert always_invalid.time_limit == settings.CELERY_TASK_TIME_LIMIT
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.CELERY_TASK_TIME_LIMIT

    @project_task(name="tests.not_idempotent", idempotent=False)
    def not_idempotent(self) -> None:
        """Declared only to inspect the options the decorator sets."""

    assert not not_idempotent.acks_late and not not_idempotent.reject_on_worker_lost


def test_a_task_longer_than_the_visibility_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds CELERY_TASK_TIME_LIMIT"):
        project_task(name="tests.too_long", idempotent=True, time_limit=settings.CELERY_TASK_TIME_LIMIT + 1)
