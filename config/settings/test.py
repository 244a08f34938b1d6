"""Settings for the test suite. tests/services.py starts PostgreSQL and Redis
(or uses DATABASE_URL / REDIS_URL when given) and exports their URLs before
Django loads this module."""

from __future__ import annotations

from pathlib import Path

from config.env import env_str
from config.settings.base import *  # noqa: F403 -- settings modules extend the base by design
from config.settings.base import database_from_url

SECRET_KEY = "test-only-not-a-secret-5b1e7d3c9a"
DEBUG = False
DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {"default": database_from_url(DATABASE_URL)} if DATABASE_URL else {}
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL
LLM_BASE_URL = env_str("LLM_BASE_URL", "http://127.0.0.1:9/v1")
# Tests that talk to a carrier point these at the sandbox carrier process (tests/conftest.py).
CARRIER_API_BASE_URL = env_str("CARRIER_API_BASE_URL", "http://127.0.0.1:9")
CARRIER_API_KEY = env_str("CARRIER_API_KEY", "test-carrier-key")
CARRIER_RETRY_BACKOFF_SECONDS = 0.05
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOG_FORMAT = "plain"
LOGGING["handlers"]["console"]["formatter"] = "plain"  # noqa: F405

# Uploaded files of a test session live in its own temporary directory (tests/services.py).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "test-media")  # noqa: F405
KNOWLEDGE_JOB_STALE_SECONDS = 30

WHITENOISE_USE_FINDERS = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# Static files come from the apps (finders); nothing is collected locally.
STATIC_ROOT = None
