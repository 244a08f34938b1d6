"""Production settings: no secret has a default, and a missing one fails at start-up."""

from __future__ import annotations

from config.env import env_bool, env_int, env_list, env_secret, env_str
from config.settings.base import *  # noqa: F403 -- settings modules extend the base by design
from config.settings.base import database_from_url

DEBUG = False
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list the site's host names in production.")

DATABASE_URL = env_secret("DATABASE_URL")
DATABASES = {"default": database_from_url(DATABASE_URL)}
REDIS_URL = env_secret("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
LLM_BASE_URL = env_secret("LLM_BASE_URL")
CARRIER_API_BASE_URL = env_secret("CARRIER_API_BASE_URL")
CARRIER_API_KEY = env_secret("CARRIER_API_KEY")

# TLS terminates at the reverse proxy, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
# Health probes come over plain HTTP from inside the cluster or compose network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
