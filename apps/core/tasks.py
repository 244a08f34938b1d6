"""The project's base Celery task and the errors that steer its retries.

Every task in the project is declared with :func:`project_task`:

- ``idempotent=True`` turns on ``acks_late`` and ``reject_on_worker_lost``: the
  message is acknowledged only after the task finishes, so a worker killed
  mid-task hands it to another worker. Only safe for tasks that can run twice.
- Errors in ``throws`` (``PermanentTaskError`` by default) are expected and are
  never retried (Read the Docs' ``throws`` habit); they are logged without a
  traceback.
- Passing faults (``TransientTaskError``, connection errors, database
  operational errors) are retried with exponential backoff and jitter.
- Soft and hard time limits come from settings unless the task gives its own.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError

from apps.core.logging import log_context
from config.celery import app

logger = logging.getLogger(__name__)


class PermanentTaskError(Exception):
    """An expected failure that retrying cannot fix (bad input, missing row)."""


class TransientTaskError(Exception):
    """A passing fault (a slow or unreachable service) worth retrying later."""


RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    TransientTaskError,
    ConnectionError,
    TimeoutError,
    OperationalError,
    InterfaceError,
)


def retry_countdown(*, retries: int, base: float, maximum: float) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, base * 2**retries))."""
    ceiling = min(maximum, base * (2**retries))
    return random.uniform(ceiling / 2, ceiling)


class ProjectTask(Task):
    throws: tuple[type[BaseException], ...] = (PermanentTaskError,)
    retry_on: tuple[type[BaseException], ...] = RETRYABLE_ERRORS
    max_retries = 5
    retry_backoff_base: float = 2.0
    retry_backoff_max: float = 300.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with log_context(task=self.name, task_id=self.request.id):
            try:
                return super().__call__(*args, **kwargs)
            except self.throws:
                raise
            except SoftTimeLimitExceeded:
                raise
            except self.retry_on as exc:
                countdown = retry_countdown(
                    retries=self.request.retries, base=self.retry_backoff_base, maximum=self.retry_backoff_max
                )
                logger.warning(
                    "task failed with a passing fault; retrying",
                    extra={"error": repr(exc), "retries": self.request.retries, "countdown": countdown},
                )
                raise self.retry(exc=exc, countdown=countdown) from exc


F = TypeVar("F", bound=Callable[..., Any])


def project_task(
    *,
    name: str,
    idempotent: bool,
    throws: tuple[type[BaseException], ...] = (PermanentTaskError,),
    retry_on: tuple[type[BaseException], ...] = RETRYABLE_ERRORS,
    max_retries: int = 5,
    retry_backoff_base: float = 2.0,
    retry_backoff_max: float = 300.0,
    soft_time_limit: int | None = None,
    time_limit: int | None = None,
    **options: Any,
) -> Callable[[F], Task]:
    """Declare a task on the project's base class; tasks take ids, not objects."""
    hard = time_limit or settings.CELERY_TASK_TIME_LIMIT
    if hard > settings.CELERY_TASK_TIME_LIMIT:
        # The broker's visibility timeout is sized from CELERY_TASK_TIME_LIMIT; a longer
        # task would be re-delivered by Redis while still running.
        raise ValueError(f"{name}: time_limit {hard}s exceeds CELERY_TASK_TIME_LIMIT")
    soft = soft_time_limit or min(settings.CELERY_TASK_SOFT_TIME_LIMIT, hard - 1)
    return app.task(
        name=name,
        base=ProjectTask,
        bind=True,
        acks_late=idempotent,
        reject_on_worker_lost=idempotent,
        throws=throws,
        retry_on=retry_on,
        max_retries=max_retries,
        retry_backoff_base=retry_backoff_base,
        retry_backoff_max=retry_backoff_max,
        soft_time_limit=soft,
        time_limit=hard,
        **options,
    )
