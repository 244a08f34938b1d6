"""/metrics through the Django test client: protection, and every metric the dashboard reads."""

from __future__ import annotations

import asyncio
import re

import pytest
from django.test import Client

from apps.conversations.sse import with_keepalive
from apps.core.metrics import SSE_STREAMS_OPEN, escalation_count, task_failure_count
from apps.knowledge.models import IngestionJob

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests"


def _scrape(client: Client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.fixture
def token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def test_metrics_are_off_without_a_token_outside_debug(client: Client, settings) -> None:
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_bearer_token(client: Client, token: str) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_metrics_name_everything_the_dashboard_reads(client: Client, token: str) -> None:
    client.get("/healthz")
    client.get("/api/widget/conversations/999999/messages/")  # a resolved view, whatever it answers
    escalation_count(reason="metrics_test")  # counters without a sample are not listed at all
    task_failure_count(sender=None)
    text = _scrape(client)
    for name in (
        "shopdesk_http_request_duration_seconds_bucket",
        "shopdesk_sse_streams_open",
        'shopdesk_celery_queue_length{queue="celery"}',
        "shopdesk_ingestion_jobs_queued",
    ):
        assert name in text, name
    assert 'view="widget-messages"' in text
    assert 'shopdesk_celery_task_failures_total{task="unknown"}' in text
    assert 'shopdesk_escalations_total{reason="metrics_test"}' in text


def test_internal_endpoints_answer_whatever_the_host(client: Client, token: str) -> None:
    """Probes and Prometheus use pod IPs, which ALLOWED_HOSTS cannot list."""
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    response = client.get("/metrics", HTTP_HOST="10.1.2.3:8000", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert client.get("/demo/", HTTP_HOST="10.1.2.3:8000").status_code == 400


def test_cross_process_counters_count(client: Client, token: str) -> None:
    class FailedTask:
        name = "tests.metrics_probe"

    before = _scrape(client)
    escalation_count(reason="metrics_test")
    escalation_count(reason="metrics_test")
    task_failure_count(sender=FailedTask())
    after = _scrape(client)
    escalations = 'shopdesk_escalations_total{reason="metrics_test"}'
    failures = 'shopdesk_celery_task_failures_total{task="tests.metrics_probe"}'
    assert _value(after, escalations) == _value(before, escalations) + 2
    assert _value(after, failures) == _value(before, failures) + 1


def test_ticket_opened_counts_as_an_escalation(
    client: Client, token: str, django_capture_on_commit_callbacks
) -> None:
    from apps.tickets.services import ticket_open

    series = 'shopdesk_escalations_total{reason="asked_for_person"}'
    before = _value(_scrape(client), series)
    with django_capture_on_commit_callbacks(execute=True):
        ticket_open(reason="asked_for_person", dedupe_key="metrics-test-escalation")
    with django_capture_on_commit_callbacks(execute=True):
        ticket_open(reason="asked_for_person", dedupe_key="metrics-test-escalation")  # the same problem again
    assert _value(_scrape(client), series) == before + 1


def test_ingestion_backlog_is_the_queued_jobs(client: Client, token: str) -> None:
    queued = IngestionJob.objects.filter(status=IngestionJob.Status.QUEUED).count()
    assert _value(_scrape(client), "shopdesk_ingestion_jobs_queued") == queued


def test_open_streams_gauge_follows_a_stream() -> None:
    async def frames():
        yield "data: one\n\n"
        yield "data: two\n\n"

    async def consume() -> list[float]:
        seen = []
        async for _ in with_keepalive(frames()):
            seen.append(SSE_STREAMS_OPEN._value.get())
        return seen

    start = SSE_STREAMS_OPEN._value.get()
    assert asyncio.run(consume()) == [start + 1, start + 1]
    assert SSE_STREAMS_OPEN._value.get() == start
