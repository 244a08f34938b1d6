from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from apps.accounts.roles import Role


def has_role(user: AbstractBaseUser | AnonymousUser, role: Role) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:  # type: ignore[union-attr]
        return True
    return user.groups.filter(name=role.value).exists()  # type: ignore[union-attr]


class IsShopAdmin(BasePermission):
    message = "Only admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return has_role(request.user, Role.ADMIN)


def is_console_user(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Agents and admins work in the agent console."""
    return has_role(user, Role.AGENT) or has_role(user, Role.ADMIN)
