from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from apps.core.health import run_checks
from apps.core.metrics import authorized, render


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


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics. With ``METRICS_TOKEN`` set, only for ``Authorization: Bearer <token>``;
    without it, off unless DEBUG (a public metrics page tells strangers the traffic and the backlog)."""
    if settings.METRICS_TOKEN:
        if not authorized(request.headers.get("Authorization", "")):
            return HttpResponse("unauthorized\n", status=401, headers={"WWW-Authenticate": "Bearer"})
    elif not settings.DEBUG:
        return HttpResponse("metrics are off: set METRICS_TOKEN\n", status=404)
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
