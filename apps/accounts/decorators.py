"""Who may open a staff page or call a staff JSON endpoint.

Pages send an anonymous visitor to the console's sign-in page and answer 403 to a signed-in user
without the role; JSON endpoints answer 401 and 403 (a script or a poll cannot follow a login redirect).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from apps.accounts.permissions import has_role, is_console_user
from apps.accounts.roles import Role

View = Callable[..., HttpResponse]


def _allowed(request: HttpRequest, role: Role | None) -> bool:
    return has_role(request.user, role) if role else is_console_user(request.user)


def staff_page(role: Role | None = None) -> Callable[[View], View]:
    """A console page for agents and admins (``role=None``) or for one role only."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("console-login"))
            if not _allowed(request, role):
                raise PermissionDenied("This page is for shop staff.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def staff_json(role: Role | None = None) -> Callable[[View], View]:
    """A JSON endpoint for agents and admins (``role=None``) or for one role only."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return JsonResponse({"detail": "sign in first"}, status=401)
            if not _allowed(request, role):
                return JsonResponse({"detail": "this is for shop staff"}, status=403)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
