from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import ValidationError
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


class AccountError(Exception):
    """An account change that is not allowed; the message is safe to show to an admin."""


def agent_create(*, username: str) -> CreatedUser:
    """A new agent account with a generated password, returned once (stored only as a hash)."""
    username = username.strip()
    if not username:
        raise AccountError("an agent needs a username")
    User = get_user_model()
    try:
        User.username_validator(username)
    except ValidationError as error:
        raise AccountError(" ".join(error.messages)) from error
    if User.objects.filter(username__iexact=username).exists():
        raise AccountError(f"the username {username!r} is taken")
    return staff_user_ensure(username=username, role=Role.AGENT)


def agent_deactivate(*, user: AbstractUser, actor: AbstractUser) -> AbstractUser:
    """The agent can no longer sign in; their tickets and audit trail stay as they are."""
    if user.pk == actor.pk:
        raise AccountError("you cannot deactivate your own account")
    if not user.groups.filter(name=Role.AGENT.value).exists():
        raise AccountError(f"{user.get_username()} is not an agent")
    user.is_active = False
    user.save(update_fields=["is_active"])
    return user
