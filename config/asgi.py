"""ASGI entry point: uvicorn (locally) or gunicorn with uvicorn workers serve it, so answers can stream."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

application = get_asgi_application()
