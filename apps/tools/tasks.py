from __future__ import annotations

from django.conf import settings

from apps.core.tasks import TransientTaskError, project_task
from apps.tools import services


@project_task(
    name="tools.tool_call_execute",
    idempotent=True,
    # Attempts are counted on the row (TOOLS_MAX_ATTEMPTS); this only bounds Celery's own retries.
    max_retries=settings.TOOLS_MAX_ATTEMPTS,
    retry_backoff_base=settings.TOOLS_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=10.0,
    soft_time_limit=settings.TOOLS_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.TOOLS_TASK_SOFT_TIME_LIMIT + 30,
)
def tool_call_execute(self, call_id: int) -> None:
    try:
        services.tool_call_execute(call_id=call_id)
    except services.ToolCallRetry as exc:
        raise TransientTaskError(str(exc)) from exc


@project_task(name="tools.requeue_stale_calls", idempotent=True, soft_time_limit=60, time_limit=90)
def requeue_stale_calls(self) -> None:
    services.tool_calls_requeue_stale()
