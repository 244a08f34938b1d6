"""Settings for ``make run`` on a developer's machine: embedded services by default."""

from __future__ import annotations

from config.env import env_str
from config.settings.base import *  # noqa: F403 -- settings modules extend the base by design
from config.settings.base import database_from_url
from stack.defaults import (
    EMBEDDED_DATABASE_URL,
    EMBEDDED_REDIS_URL,
    LOCAL_CARRIER_URL,
    LOCAL_MODEL_WORKER_URL,
    SANDBOX_CARRIER_API_KEY,
)

DEBUG = True
# A fixed key is fine for a local, loopback-only stack; production reads its own.
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "local-development-only-not-a-secret-0d6c2f")

DATABASE_URL = env_str("DATABASE_URL") or EMBEDDED_DATABASE_URL
DATABASES = {"default": database_from_url(DATABASE_URL)}
REDIS_URL = env_str("REDIS_URL") or EMBEDDED_REDIS_URL
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
LLM_BASE_URL = env_str("LLM_BASE_URL") or LOCAL_MODEL_WORKER_URL
# The sandbox carrier that ``make run`` starts, unless a real carrier API is configured.
CARRIER_API_BASE_URL = env_str("CARRIER_API_BASE_URL") or LOCAL_CARRIER_URL
CARRIER_API_KEY = env_str("CARRIER_API_KEY") or SANDBOX_CARRIER_API_KEY

# Static files straight from the apps, no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# Static files come from the apps (finders); nothing is collected locally.
STATIC_ROOT = None
