"""Account reads: the agents an admin manages and the people a ticket can be assigned to."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db.models import Count, Q, QuerySet

from apps.accounts.roles import Role

# Ticket statuses a person still has to act on (kept here as strings: accounts does not import tickets).
_OPEN_TICKET_STATUSES = ("open", "pending")


def agent_list() -> QuerySet[AbstractUser]:
    """Every agent account, active first, with how many unfinished tickets each holds."""
    return (
        get_user_model()
        .objects.filter(groups__name=Role.AGENT.value)
        .annotate(open_tickets=Count("tickets", filter=Q(tickets__status__in=_OPEN_TICKET_STATUSES)))
        .order_by("-is_active", "username")
    )


def assignable_staff() -> QuerySet[AbstractUser]:
    """Active agents and admins: whom a ticket may be assigned to."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__name__in=[Role.AGENT.value, Role.ADMIN.value]) | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )
