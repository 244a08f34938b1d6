"""CORS for the widget API: the widget runs on the shop's own site (another origin) and
calls us with a bearer token, never cookies, so any allowed origin may call it."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

WIDGET_PREFIX = "/api/widget/"


class WidgetCorsMiddleware:
    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _allowed_origin(self, request: HttpRequest) -> str | None:
        origin = request.headers.get("Origin")
        allowed = settings.WIDGET_ALLOWED_ORIGINS
        if origin is None:
            return None
        return origin if "*" in allowed or origin in allowed else None

    def _decorate(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        origin = self._allowed_origin(request)
        if origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response["Access-Control-Max-Age"] = "600"
            response["Vary"] = "Origin"
        return response

    def __call__(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        if iscoroutinefunction(self):
            return self.__acall__(request)
        if request.path.startswith(WIDGET_PREFIX):
            if request.method == "OPTIONS":
                return self._decorate(request, HttpResponse(status=204))
            return self._decorate(request, self.get_response(request))
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(WIDGET_PREFIX):
            if request.method == "OPTIONS":
                return self._decorate(request, HttpResponse(status=204))
            return self._decorate(request, await self.get_response(request))
        return await self.get_response(request)
