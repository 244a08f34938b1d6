from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction

from apps.accounts.roles import Role


@dataclass(frozen=True)
class CreatedUser:
    user: AbstractUser
    password: str | None  # set only when the account was created now


def staff_user_ensure(*, username: str, role: Role, password: str | None = None) -> CreatedUser:
    """Create a staff account in ``role`` unless it exists. A generated password is
    returned once, for printing; it is stored only as a hash."""
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"is_staff": role is Role.ADMIN, "is_superuser": role is Role.ADMIN},
        )
        # get_or_create: the roles migration made the groups, but a flushed database has none.
        user.groups.add(Group.objects.get_or_create(name=role.value)[0])
        if not created:
            if password:
                user.set_password(password)
                user.save(update_fields=["password"])
            return CreatedUser(user=user, password=None)
        password = password or secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        return CreatedUser(user=user, password=password)
