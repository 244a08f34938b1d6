"""JSON endpoints behind the console's live parts: the queue (new escalations, counts), a ticket's
new messages, and the dashboard's numbers. Anonymous callers get 401, signed-in people who are not
agents or admins 403 (``staff_json``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from apps.accounts.decorators import staff_json
from apps.conversations.api import message_json
from apps.tickets import selectors
from apps.tickets.models import Ticket
from apps.tickets.views import queue_page

DASHBOARD_DEFAULT_DAYS = 14
DASHBOARD_MAX_DAYS = 90
# At most this many new tickets are announced per poll (the counts say how many there are).
OPENED_MAX = 20


def _ticket_json(ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "url": reverse("console-ticket", args=[ticket.number]),
        "reason": ticket.reason,
        "reason_label": ticket.get_reason_display(),
        "priority": ticket.priority,
        "status": ticket.status,
        "assignee": ticket.assignee.get_username() if ticket.assignee else None,
        "customer": ticket.customer.name if ticket.customer else None,
        "order": ticket.order.number if ticket.order else None,
        "detail": ticket.detail[:200],
        "sla_due_at": ticket.sla_due_at.isoformat(),
        "sla_breached": getattr(ticket, "sla_breached", False),
        "created_at": ticket.created_at.isoformat(),
    }


def _id_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "0")
    return int(value) if value.isdigit() else None


@require_GET
@staff_json()
def queue(request: HttpRequest) -> JsonResponse:
    """The queue page's rows under its filters and page, the counts per status, and the tickets
    opened since ``?since=<ticket id>`` (the console notifies the agent of those)."""
    since = _id_param(request, "since")
    if since is None:
        return JsonResponse({"detail": "since must be a ticket id"}, status=400)
    filters = selectors.QueueFilters.from_query(request.GET)
    page = queue_page(request, filters)
    # Without ``since`` nothing is "new"; a console that saw no tickets at all asks with since=0.
    opened = list(selectors.tickets_opened_after(since)[:OPENED_MAX]) if "since" in request.GET else []
    return JsonResponse(
        {
            "counts": selectors.ticket_status_counts(filters, user=request.user),
            "latest_id": selectors.ticket_latest_id(),
            "opened": [
                {
                    "number": t.number,
                    "reason_label": t.get_reason_display(),
                    "url": reverse("console-ticket", args=[t.number]),
                }
                for t in opened
            ],
            "page": page.number,
            "pages": page.paginator.num_pages,
            "tickets": [_ticket_json(ticket) for ticket in page],
        }
    )


@require_GET
@staff_json()
def ticket_messages(request: HttpRequest, number: str) -> JsonResponse:
    """The ticket's conversation since ``?after=<message id>``, with the ticket's and the
    conversation's status (the ticket page polls this for the customer's new messages)."""
    after = _id_param(request, "after")
    if after is None:
        return JsonResponse({"detail": "after must be a message id"}, status=400)
    try:
        ticket = selectors.ticket_get(number=number)
    except Ticket.DoesNotExist:
        return JsonResponse({"detail": "no such ticket"}, status=404)
    messages = selectors.conversation_messages(conversation_id=ticket.conversation_id, after=after)
    return JsonResponse(
        {
            "ticket_status": ticket.status,
            "assignee": ticket.assignee.get_username() if ticket.assignee else None,
            "conversation_status": ticket.conversation.status if ticket.conversation else None,
            "messages": [message_json(message) for message in messages],
        }
    )


@require_GET
@staff_json()
def dashboard(request: HttpRequest) -> JsonResponse:
    """The dashboard's numbers over the last ``?days=`` days (1 to 90, default 14)."""
    days = _id_param(request, "days") if "days" in request.GET else DASHBOARD_DEFAULT_DAYS
    if not days or days > DASHBOARD_MAX_DAYS:
        return JsonResponse({"detail": f"days must be 1 to {DASHBOARD_MAX_DAYS}"}, status=400)
    return JsonResponse(selectors.dashboard_stats(days=days).as_json())
