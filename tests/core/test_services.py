"""The real PostgreSQL + pgvector and Redis the product runs on."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


def test_pgvector_extension_is_installed_by_migrations() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = cursor.fetchone()
    major, minor = (int(part) for part in version.split(".")[:2])
    assert (major, minor) >= (0, 8)


def test_hnsw_cosine_index_is_built_and_used() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE probe_items (id serial PRIMARY KEY, embedding vector(3))")
        cursor.execute(
            "INSERT INTO probe_items (embedding) SELECT ARRAY[random(), random(), random()]::vector "
            "FROM generate_series(1, 2000)"
        )
        cursor.execute("CREATE INDEX probe_hnsw ON probe_items USING hnsw (embedding vector_cosine_ops)")
        cursor.execute("ANALYZE probe_items")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN SELECT id FROM probe_items ORDER BY embedding <=> '[1,0,0]' LIMIT 5")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT id FROM probe_items ORDER BY embedding <=> '[1,0,0]' LIMIT 5")
        rows = cursor.fetchall()
    assert "probe_hnsw" in plan
    assert len(rows) == 5


def test_redis_round_trip() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set("test:round-trip", "值")
    assert client.get("test:round-trip").decode() == "值"
