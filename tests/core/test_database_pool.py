"""DATABASE_POOL_MAX_SIZE: a bounded psycopg pool for the ASGI web server, on the real PostgreSQL."""

from __future__ import annotations

import os
import threading

from django.db import connection, connections

from config.settings.base import database_from_url

ALIAS = "pool-test"


def test_without_a_pool_connections_persist_as_configured(monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_POOL_MAX_SIZE", raising=False)
    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", "60")
    config = database_from_url("postgres://u:p@db:5432/shop")
    assert config["CONN_MAX_AGE"] == 60
    assert "pool" not in config["OPTIONS"]


def test_with_a_pool_connections_are_not_kept_by_django(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "8")
    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", "60")
    monkeypatch.setenv("DATABASE_POOL_TIMEOUT", "12.5")
    config = database_from_url("postgres://u:p@db:5432/shop")
    assert config["CONN_MAX_AGE"] == 0
    assert config["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 8, "timeout": 12.5}


def test_a_burst_of_threads_shares_a_bounded_pool_on_the_real_server(
    monkeypatch, django_db_setup, django_db_blocker
) -> None:
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "3")
    settings_dict = {**connection.settings_dict, **database_from_url(os.environ["DATABASE_URL"])}
    settings_dict["NAME"] = connection.settings_dict["NAME"]  # the test database
    settings_dict["OPTIONS"] = {**settings_dict["OPTIONS"], "application_name": "shopdesk-pool-test"}
    connections.settings[ALIAS] = settings_dict
    seen: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def query() -> None:
        # As for a request under ASGI: a thread of its own, Django's per-thread connection, one shared pool.
        try:
            with connections[ALIAS].cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shopdesk-pool-test'"
                )
                (count,) = cursor.fetchone()
                cursor.execute("SELECT pg_sleep(0.05)")
            with lock:
                seen.append(count)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections[ALIAS].close()

    threads = [threading.Thread(target=query) for _ in range(30)]
    with django_db_blocker.unblock():
        _run_and_check(threads, seen, errors)


def _run_and_check(threads: list[threading.Thread], seen: list[int], errors: list[BaseException]) -> None:
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors[:3]
        assert len(seen) == 30
        assert 1 <= max(seen) <= 3
    finally:
        connections[ALIAS].close_pool()
        del connections.settings[ALIAS]
