from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.core.health import run_checks


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No I/O, so a slow dependency never restarts us."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database + pgvector, Redis, a Celery worker, and one generated token."""
    results = await run_checks()
    ready = all(result.ok for result in results)
    body = {
        "status": "ok" if ready else "fail",
        "checks": {
            result.name: {"ok": result.ok, "latency_ms": result.latency_ms, "detail": result.detail}
            for result in results
        },
    }
    return JsonResponse(body, status=200 if ready else 503)
