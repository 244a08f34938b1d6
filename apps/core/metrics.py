"""Prometheus metrics of the Django site and the Celery workers, served at ``/metrics``.

Three kinds, by where the number lives:

- **In the web process**: request latency by view and the server-sent event streams open now.
  gunicorn runs several worker processes, so these use prometheus_client's multiprocess mode when
  ``PROMETHEUS_MULTIPROC_DIR`` is set (the container images set it; deploy/docker/gunicorn.conf.py
  empties it at start and marks dead workers), and the default registry otherwise (``make run``, tests).
- **Events that may happen in any process** (a Celery task failing in a worker container, a ticket
  opened by a web request or by a task): counted in a Redis hash with ``HINCRBY``, so the one scrape
  of the web site sees every process's count. A failed increment is logged and dropped: metrics never
  break the work they count.
- **State read at scrape time**: the Celery queues' lengths (``LLEN`` on the broker's lists) and the
  ingestion jobs waiting (``COUNT`` over the ``(status, heartbeat_at)`` index).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator

import redis
from django.conf import settings
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger(__name__)

REQUEST_LATENCY = Histogram(
    "shopdesk_http_request_duration_seconds",
    "Time from request to response headers, by view (a stream's own length is not included).",
    ["view", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# livesum: the streams of all live gunicorn workers added up; a dead worker's streams are gone.
SSE_STREAMS_OPEN = Gauge(
    "shopdesk_sse_streams_open",
    "Server-sent event streams being served now (widget answers, /v1/chat/completions).",
    multiprocess_mode="livesum",
)

# Redis hashes of the cross-process counters: field = label value, value = count.
TASK_FAILURES_KEY = "shopdesk:metrics:celery_task_failures"
ESCALATIONS_KEY = "shopdesk:metrics:escalations"


def _redis() -> redis.Redis:
    timeout = settings.READYZ_CHECK_TIMEOUT
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)


def event_count(key: str, label: str) -> None:
    """Add one to a cross-process counter; a Redis outage loses the increment, never the caller's work."""
    try:
        with _redis() as client:
            client.hincrby(key, label, 1)
    except (redis.RedisError, OSError) as exc:
        logger.warning("metric increment lost", extra={"metric": key, "label": label, "error": repr(exc)})


def escalation_count(*, reason: str) -> None:
    """A conversation handed to people: a ticket opened (its reason says why)."""
    event_count(ESCALATIONS_KEY, reason)


def celery_queue_names() -> list[str]:
    """The queues Celery consumes: the default one (``celery``) and any declared in settings."""
    from config.celery import app

    names = {app.conf.task_default_queue}
    names.update(queue.name for queue in app.conf.task_queues or ())
    return sorted(names)


class ScrapeTimeCollector(Collector):
    """Numbers read from Redis and PostgreSQL when Prometheus scrapes, not kept in the process."""

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._from_redis()
        yield from self._from_database()

    def _from_redis(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        queue_length = GaugeMetricFamily(
            "shopdesk_celery_queue_length", "Tasks waiting in a Celery queue (Redis LLEN).", labels=["queue"]
        )
        failures = CounterMetricFamily(
            "shopdesk_celery_task_failures", "Celery tasks that failed for good, by task.", labels=["task"]
        )
        escalations = CounterMetricFamily(
            "shopdesk_escalations",
            "Conversations handed to people (tickets opened), by reason.",
            labels=["reason"],
        )
        try:
            with _redis() as client:
                pipe = client.pipeline(transaction=False)
                names = celery_queue_names()
                for name in names:
                    pipe.llen(name)
                pipe.hgetall(TASK_FAILURES_KEY)
                pipe.hgetall(ESCALATIONS_KEY)
                *lengths, failed, escalated = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            logger.warning("metrics: Redis unreadable at scrape", extra={"error": repr(exc)})
            return
        for name, length in zip(names, lengths, strict=True):
            queue_length.add_metric([name], length)
        for task, count in sorted(failed.items()):
            failures.add_metric([task.decode()], int(count))
        for reason, count in sorted(escalated.items()):
            escalations.add_metric([reason.decode()], int(count))
        yield from (queue_length, failures, escalations)

    def _from_database(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError

        from apps.knowledge.models import IngestionJob

        backlog = GaugeMetricFamily(
            "shopdesk_ingestion_jobs_queued", "Document ingestion jobs queued and not yet started."
        )
        try:
            backlog.add_metric([], IngestionJob.objects.filter(status=IngestionJob.Status.QUEUED).count())
        except DatabaseError as exc:
            logger.warning("metrics: database unreadable at scrape", extra={"error": repr(exc)})
            return
        yield backlog


def registry() -> CollectorRegistry:
    """What one scrape reports: this process's metrics (or every gunicorn worker's), plus scrape-time ones."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        scrape = CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape)
    else:
        scrape = CollectorRegistry()
        scrape.register(_ProcessMetrics())
    scrape.register(ScrapeTimeCollector())
    return scrape


class _ProcessMetrics(Collector):
    """The default registry's metrics (this process's) inside a per-scrape registry."""

    def collect(self) -> Iterator:
        return REGISTRY.collect()


def render() -> bytes:
    return generate_latest(registry())


def authorized(authorization_header: str) -> bool:
    """``Authorization: Bearer <METRICS_TOKEN>``, compared in constant time."""
    token = settings.METRICS_TOKEN
    scheme, _, given = authorization_header.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def task_failure_count(sender: object = None, **_: object) -> None:
    """Celery's ``task_failure`` signal (connected in CoreConfig.ready): a task that ended in FAILURE.
    Retries are not failures; they raise ``Retry`` and fire ``task_retry`` instead."""
    event_count(TASK_FAILURES_KEY, getattr(sender, "name", None) or "unknown")
