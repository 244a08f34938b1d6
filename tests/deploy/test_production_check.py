"""The production settings, with the environment the compose containers get from .env.example and
compose.yaml (secrets as files), pass ``manage.py check --deploy --fail-level WARNING``."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.deploy.conftest import BASE_DIR, compose_resolved, env_example_active


def container_env(secret_dir: Path) -> dict[str, str]:
    """.env.example's values, then the app service's environment, with /run/secrets/ moved to a temp dir."""
    compose = compose_resolved()
    env = {
        **env_example_active(),
        **{key: str(value) for key, value in compose["services"]["web"]["environment"].items()},
    }
    for name in compose["secrets"]:
        value = (
            "postgres://shopdesk:pw@postgres:5432/shopdesk"
            if name == "database_url"
            else secrets.token_urlsafe(48)
        )
        (secret_dir / name).write_text(value)
    return {key: value.replace("/run/secrets", str(secret_dir)) for key, value in env.items()}


def test_container_settings_pass_check_deploy(tmp_path: Path) -> None:
    outside = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "LLM_", "DATABASE_", "REDIS_", "CARRIER_", "METRICS_"))
    }
    env = {**outside, **container_env(tmp_path)}
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
