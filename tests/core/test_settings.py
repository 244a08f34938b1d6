"""Production settings: secure when configured, failing fast when a secret is missing."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def _manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "LLM_", "DATABASE_", "REDIS_", "CARRIER_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "DJANGO_ALLOWED_HOSTS": "support.example.com",
    "DATABASE_URL": "postgres://shopdesk:secret@db.internal:5432/shopdesk",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "LLM_BASE_URL": "http://model.internal:8000/v1",
    "CARRIER_API_BASE_URL": "https://tracking.carrier.example",
    "CARRIER_API_KEY": secrets.token_urlsafe(32),
}


def test_check_deploy_reports_no_issues() -> None:
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 silenced" in result.stdout or "no issues" in result.stdout


def test_secret_key_may_come_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(secrets.token_urlsafe(64))
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "DJANGO_SECRET_KEY"}
    result = _manage(
        ["check", "--deploy", "--fail-level", "WARNING"], {**env, "DJANGO_SECRET_KEY_FILE": str(secret_file)}
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_without_a_secret_key_fails_fast() -> None:
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "DJANGO_SECRET_KEY"}
    result = _manage(["check"], env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_without_a_database_url_fails_fast() -> None:
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "DATABASE_URL"}
    result = _manage(["check"], env)
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
