"""A private embedded PostgreSQL for a benchmark run, with the project's schema migrated."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from stack.ports import free_port
from stack.postgres import EmbeddedPostgres


@contextlib.contextmanager
def benchmark_database() -> Iterator[str]:
    """Start PostgreSQL + pgvector in a temporary directory, set up Django on it, migrate."""
    root = Path(tempfile.mkdtemp(prefix="shopdesk-bench-"))
    root.chmod(0o755)
    postgres = EmbeddedPostgres(
        data_dir=root / "postgres", port=free_port(), superuser="shopdesk", database="bench"
    )
    postgres.ensure_initialized()
    postgres.start()
    try:
        os.environ["DATABASE_URL"] = postgres.url
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:9/0")
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
        os.environ["MEDIA_ROOT"] = str(root / "media")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        yield postgres.url
    finally:
        from django.db import connections

        connections.close_all()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
