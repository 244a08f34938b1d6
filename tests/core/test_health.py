"""/healthz and /readyz against the real services."""

from __future__ import annotations

import time

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_answers_without_io(client: Client, django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_the_model_worker_when_it_is_unreachable(
    client: Client, celery_worker, settings
) -> None:
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert body["checks"]["model"]["ok"] is False
    assert "unreachable" in body["checks"]["model"]["detail"]
    for name in ("database", "redis", "celery"):
        assert body["checks"][name]["ok"] is True, body
        assert body["checks"][name]["latency_ms"] >= 0
    assert "pgvector" in body["checks"]["database"]["detail"]


def _readyz(client: Client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.json()


@pytest.mark.slow
def test_readyz_follows_redis_down_and_back(
    client: Client, celery_worker, model_worker, redis_server, settings
) -> None:
    settings.LLM_BASE_URL = model_worker
    status, body = _readyz(client)
    assert status == 200, body
    assert all(check["ok"] for check in body["checks"].values())

    redis_server.stop()
    try:
        status, body = _readyz(client)
        assert status == 503
        assert body["checks"]["redis"]["ok"] is False
        assert (
            "redis" in body["checks"]["redis"]["detail"].lower()
            or "connect" in body["checks"]["redis"]["detail"].lower()
        )
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["model"]["ok"] is True
    finally:
        redis_server.start()

    # Same Django process; the Celery worker reconnects to the broker by itself.
    deadline = time.monotonic() + 60
    while True:
        status, body = _readyz(client)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status == 200, body


def test_readyz_with_replicas_is_ready_while_one_answers_and_names_the_one_down(
    client: Client, celery_worker, settings, model_worker: str
) -> None:
    settings.LLM_BASE_URL = f"{model_worker},http://127.0.0.1:9/v1"
    response = client.get("/readyz")
    model = response.json()["checks"]["model"]
    assert response.status_code == 200 and model["ok"] is True
    assert "1 of 2 model workers generated a token" in model["detail"]
    assert "http://127.0.0.1:9/v1" in model["detail"] and "unreachable" in model["detail"]

    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1,http://127.0.0.1:7/v1"
    response = client.get("/readyz")
    model = response.json()["checks"]["model"]
    assert response.status_code == 503 and model["ok"] is False
    assert "no model worker answered" in model["detail"]
