"""gunicorn settings of the web container: uvicorn workers serving Django over ASGI.

Every value may be overridden with the environment variable named beside it (GUNICORN_*).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import multiprocess

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# uvicorn_worker: the maintained home of uvicorn's gunicorn worker (uvicorn.workers is deprecated).
worker_class = "uvicorn_worker.UvicornWorker"
# Answers are I/O-bound (they wait on the model worker); each worker serves many streams at once.
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
# A worker silent this long is killed. Streams are async and do not block the heartbeat.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# Longer than LLM_TOTAL_TIMEOUT (180 s) would keep a deploy waiting; streams in flight get this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
# Recycle workers now and then (with jitter so they do not restart together).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "500"))
# Each ASGI request runs its database work in a thread of its own: a bounded pool per worker process
# keeps a burst of streams from exhausting PostgreSQL's connections (4 workers x 20 = 80 at most).
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "20")
accesslog = "-"
errorlog = "-"
# TLS ends at nginx or the ingress controller, which set X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")


def on_starting(server: object) -> None:
    """prometheus_client's multiprocess mode: one fresh directory of metric files per start."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        Path(directory).mkdir(parents=True, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    """A dead worker's live gauges (open streams) stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
