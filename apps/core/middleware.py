"""Middleware of the core app: internal endpoints answered before host checks, and request metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase

from apps.core import views
from apps.core.metrics import REQUEST_LATENCY

# Probes and Prometheus reach a pod by its IP (Host: 10.1.2.3:8000), which no ALLOWED_HOSTS can list.
# These endpoints serve no user content, so they are answered before CommonMiddleware checks the host.
INTERNAL_ENDPOINTS: dict[str, Callable] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    "/metrics": views.metrics,
}


class _DualModeMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        return self.handle_sync(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError

    def handle_sync(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError


class InternalEndpointsMiddleware(_DualModeMiddleware):
    """First in MIDDLEWARE: ``/healthz``, ``/readyz`` and ``/metrics`` go straight to their views."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        view = INTERNAL_ENDPOINTS.get(request.path_info)
        if view is None:
            return await self.get_response(request)
        if iscoroutinefunction(view):
            return await view(request)
        return await sync_to_async(view)(request)

    def handle_sync(self, request: HttpRequest) -> HttpResponseBase:
        view = INTERNAL_ENDPOINTS.get(request.path_info)
        if view is None:
            return self.get_response(request)
        if iscoroutinefunction(view):
            return async_to_sync(view)(request)
        return view(request)


class RequestMetricsMiddleware(_DualModeMiddleware):
    """Latency to the response headers by view name (bounded labels: URL names, not paths)."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = await self.get_response(request)
        _observe(request, response, started)
        return response

    def handle_sync(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        _observe(request, response, started)
        return response


def _observe(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
    match = getattr(request, "resolver_match", None)
    view = (match.view_name or match._func_path) if match else "unresolved"
    REQUEST_LATENCY.labels(view=view, method=request.method, status=str(response.status_code)).observe(
        time.perf_counter() - started
    )
