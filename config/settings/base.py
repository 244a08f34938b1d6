"""Settings shared by every environment; each value is read from the environment.

See README.md ("Configuration") for the table of variables.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("VAR_DIR") or BASE_DIR / "var")

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "apps.core",
    "apps.accounts",
    "apps.knowledge",
    "apps.conversations",
    "apps.orders",
    "apps.tickets",
    "apps.tools",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics answer before the host check: probes and Prometheus use pod IPs.
    "apps.core.middleware.InternalEndpointsMiddleware",
    "apps.core.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves static files (admin, widget) from the app server; cached forever by hashed name.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "apps.conversations.middleware.WidgetCorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    pool_size = env_int("DATABASE_POOL_MAX_SIZE", 0)
    config = dj_database_url.parse(
        url,
        # A pool hands connections back itself; Django refuses persistent connections beside one.
        conn_max_age=0 if pool_size else env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=not pool_size,
    )
    options = config.setdefault("OPTIONS", {})
    options["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5)
    if pool_size:
        # Under ASGI each request's database work runs in a thread of its own; a bounded pool makes
        # a burst of requests wait up to DATABASE_POOL_TIMEOUT for a connection instead of
        # exhausting PostgreSQL's max_connections (benchmarks/REPORT.md, widget streams).
        options["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 30.0),
        }
    return config


DATABASE_URL = env_str("DATABASE_URL")
DATABASES = {"default": database_from_url(DATABASE_URL)} if DATABASE_URL else {}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "media/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shopdesk API",
    "DESCRIPTION": "Customer-service platform: knowledge base, conversations, tickets, orders.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # API docs are for staff only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
}

# --- Celery -----------------------------------------------------------------
# The longest task's hard limit; the broker's visibility timeout must exceed it,
# or Redis re-delivers a task that is still running (acks_late tasks).
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict = {}

# --- Model worker (any OpenAI-compatible endpoint) ---------------------------
LLM_BASE_URL = env_str("LLM_BASE_URL")
LLM_API_KEY = env_str("LLM_API_KEY", "")
LLM_MODEL = env_str("LLM_MODEL", "shopdesk-chat")
LLM_CONNECT_TIMEOUT = env_float("LLM_CONNECT_TIMEOUT", 3.0)
LLM_PROBE_TIMEOUT = env_float("LLM_PROBE_TIMEOUT", 10.0)

# --- Health -----------------------------------------------------------------
READYZ_CHECK_TIMEOUT = env_float("READYZ_CHECK_TIMEOUT", 3.0)
# Bearer token Prometheus sends to /metrics; unset, /metrics is off unless DEBUG (apps/core/views.py).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "apps.core.logging.JsonFormatter"},
        "plain": {"format": "%(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "httpx": {"level": "WARNING"},
    },
}

# --- Knowledge base -------------------------------------------------------------
KNOWLEDGE_DEFAULT_EMBEDDER = env_str("KNOWLEDGE_DEFAULT_EMBEDDER", "multilingual-e5-small")
# A running ingestion job whose heartbeat is older than this is taken to be dead.
KNOWLEDGE_JOB_STALE_SECONDS = env_int("KNOWLEDGE_JOB_STALE_SECONDS", 300)
KNOWLEDGE_SEARCH_CANDIDATES = env_int("KNOWLEDGE_SEARCH_CANDIDATES", 40)
KNOWLEDGE_HNSW_EF_SEARCH = env_int("KNOWLEDGE_HNSW_EF_SEARCH", 80)
KNOWLEDGE_VECTOR_WEIGHT = env_float("KNOWLEDGE_VECTOR_WEIGHT", 1.0)
# With k=2, a first-place full-text match alone (0.2/3) cannot overturn the best vector hit
# (1/3 - 1/4): words decide between close vector candidates. Measured on the demo set (README).
KNOWLEDGE_LEXICAL_WEIGHT = env_float("KNOWLEDGE_LEXICAL_WEIGHT", 0.2)
KNOWLEDGE_RRF_K = env_int("KNOWLEDGE_RRF_K", 2)
# At most this many full-text matches are ranked per query (ranking is the costly part).
KNOWLEDGE_LEXICAL_SCAN_LIMIT = env_int("KNOWLEDGE_LEXICAL_SCAN_LIMIT", 500)
CELERY_BEAT_SCHEDULE["knowledge-requeue-stale-jobs"] = {
    "task": "knowledge.requeue_stale_jobs",
    "schedule": 60.0,
}

# --- Assistant --------------------------------------------------------------------
CHAT_PASSAGES = env_int("CHAT_PASSAGES", 4)
# Below this cosine similarity of the best passage, the assistant says it doesn't know.
CHAT_MIN_SIMILARITY = env_float("CHAT_MIN_SIMILARITY", 0.80)
CHAT_TEMPERATURE = env_float("CHAT_TEMPERATURE", 0.2)
CHAT_TOP_P = env_float("CHAT_TOP_P", 0.9)
CHAT_MAX_TOKENS = env_int("CHAT_MAX_TOKENS", 400)
CHAT_HISTORY_MESSAGES = env_int("CHAT_HISTORY_MESSAGES", 8)
# Output tokens of the standalone-query rewrite before retrieval (when there is history); 0 turns it off.
CHAT_QUERY_REWRITE_MAX_TOKENS = env_int("CHAT_QUERY_REWRITE_MAX_TOKENS", 48)
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 2000)
CHAT_MESSAGES_PER_VISITOR_PER_MINUTE = env_int("CHAT_MESSAGES_PER_VISITOR_PER_MINUTE", 12)
CHAT_MESSAGES_PER_IP_PER_MINUTE = env_int("CHAT_MESSAGES_PER_IP_PER_MINUTE", 60)
CHAT_CREATE_PER_IP_PER_MINUTE = env_int("CHAT_CREATE_PER_IP_PER_MINUTE", 20)
# Requests a minute per API key of the OpenAI-compatible endpoint (/v1/chat/completions).
CHAT_API_REQUESTS_PER_KEY_PER_MINUTE = env_int("CHAT_API_REQUESTS_PER_KEY_PER_MINUTE", 60)
LLM_FIRST_TOKEN_TIMEOUT = env_float("LLM_FIRST_TOKEN_TIMEOUT", 30.0)
LLM_TOTAL_TIMEOUT = env_float("LLM_TOTAL_TIMEOUT", 180.0)
# Origins whose pages may embed the widget ("*": any shop page).
WIDGET_ALLOWED_ORIGINS = env_list("WIDGET_ALLOWED_ORIGINS", ["*"])

# --- Orders and logistics -----------------------------------------------------------
# The carrier tracking API (the sandbox carrier under ``make run`` and in tests).
CARRIER_API_BASE_URL = env_str("CARRIER_API_BASE_URL")
CARRIER_API_KEY = env_str("CARRIER_API_KEY", "")
# Per attempt; a lookup takes at most (retries + 1) x timeout plus the backoff between tries.
CARRIER_TIMEOUT_SECONDS = env_float("CARRIER_TIMEOUT_SECONDS", 5.0)
# Extra attempts after connection errors, timeouts and 5xx answers (nothing else is retried).
CARRIER_MAX_RETRIES = env_int("CARRIER_MAX_RETRIES", 2)
CARRIER_RETRY_BACKOFF_SECONDS = env_float("CARRIER_RETRY_BACKOFF_SECONDS", 0.5)
# Anomaly rules (apps/orders/anomalies.py); drop a code from the list to switch its rule off.
ORDERS_ANOMALY_RULES = env_list(
    "ORDERS_ANOMALY_RULES",
    ["stale_in_transit", "exception", "lost", "past_promised_date", "returned_to_sender"],
)
ORDERS_STALE_SCAN_HOURS = env_float("ORDERS_STALE_SCAN_HOURS", 72.0)
ORDERS_LATE_GRACE_DAYS = env_int("ORDERS_LATE_GRACE_DAYS", 0)


# --- Tool steps (apps/tools) ---------------------------------------------------------
# Seconds a chat turn waits for a tool call (the carrier lookup) before telling the customer it is
# still checking; the call goes on in the worker and opens its ticket when the carrier answers.
TOOLS_WAIT_SECONDS = env_float("TOOLS_WAIT_SECONDS", 8.0)
# Attempts of one tool call in all, after passing faults (carrier timeouts, 5xx), with backoff between.
TOOLS_MAX_ATTEMPTS = env_int("TOOLS_MAX_ATTEMPTS", 3)
TOOLS_RETRY_BACKOFF_SECONDS = env_float("TOOLS_RETRY_BACKOFF_SECONDS", 1.0)
TOOLS_TASK_SOFT_TIME_LIMIT = env_int("TOOLS_TASK_SOFT_TIME_LIMIT", 60)
# A call queued or running this long without finishing is re-queued by the sweeper (beat, every minute).
TOOLS_STALE_SECONDS = env_int("TOOLS_STALE_SECONDS", 120)
# Output tokens of the tool choice the model makes when a message is not clear-cut (0: never ask).
TOOLS_DECIDE_MAX_TOKENS = env_int("TOOLS_DECIDE_MAX_TOKENS", 24)
CELERY_BEAT_SCHEDULE["tools-requeue-stale-calls"] = {"task": "tools.requeue_stale_calls", "schedule": 60.0}


# Tickets: minutes from opening to the service-level deadline, per priority.
TICKET_SLA_MINUTES = {
    "urgent": env_int("TICKET_SLA_MINUTES_URGENT", 30),
    "high": env_int("TICKET_SLA_MINUTES_HIGH", 60),
    "normal": env_int("TICKET_SLA_MINUTES_NORMAL", 240),
    "low": env_int("TICKET_SLA_MINUTES_LOW", 1440),
}
