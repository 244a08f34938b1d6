"""Where the embedded services listen when DATABASE_URL / REDIS_URL are unset.

Shared by the local settings (to build their default URLs) and by the process
supervisor behind ``make run`` (to start the services there). Ports are
non-standard so a system PostgreSQL on 5432 or Redis on 6379 does not clash.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))

EMBEDDED_PG_PORT = int(os.environ.get("EMBEDDED_PG_PORT", "54329"))
EMBEDDED_PG_DB = "shopdesk"
EMBEDDED_PG_USER = "shopdesk"
EMBEDDED_REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
MODEL_WORKER_PORT = int(os.environ.get("MODEL_WORKER_PORT", "8011"))
CARRIER_SANDBOX_PORT = int(os.environ.get("CARRIER_SANDBOX_PORT", "8021"))
# The sandbox carrier's key when CARRIER_API_KEY is unset: not a secret, loopback only.
SANDBOX_CARRIER_API_KEY = "sandbox-key"

EMBEDDED_DATABASE_URL = f"postgres://{EMBEDDED_PG_USER}@127.0.0.1:{EMBEDDED_PG_PORT}/{EMBEDDED_PG_DB}"
EMBEDDED_REDIS_URL = f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"
LOCAL_MODEL_WORKER_URL = f"http://127.0.0.1:{MODEL_WORKER_PORT}/v1"
LOCAL_CARRIER_URL = f"http://127.0.0.1:{CARRIER_SANDBOX_PORT}"
