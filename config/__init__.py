"""Project configuration. Importing the Celery app here makes ``shared_task`` bind to it."""

import os

# Without it, torch's idle OpenMP threads spin and a single query embedding takes
# seconds instead of milliseconds on a busy machine (measured; see RECIPES).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from config.celery import app as celery_app  # noqa: E402 -- after the environment is set

__all__ = ["celery_app"]
