"""The agent console: the ticket queue, one ticket with its conversation and actions, and the dashboard.

Server-rendered pages; their live parts poll the JSON endpoints in ``apps/tickets/api.py``. Every change
goes through ``apps/tickets/services.py``; a refused change (``TicketError``) is shown to the agent and
writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.decorators import staff_page
from apps.accounts.permissions import has_role
from apps.accounts.roles import Role
from apps.accounts.selectors import assignable_staff
from apps.tickets import selectors
from apps.tickets.admin_links import tool_call_failures_url
from apps.tickets.models import Ticket
from apps.tickets.services import (
    TRANSITIONS,
    TicketError,
    ticket_assign,
    ticket_hand_back,
    ticket_note_add,
    ticket_priority_set,
    ticket_reply,
    ticket_status_set,
)

QUEUE_PAGE_SIZE = 25
# How often the console's live parts ask for news, in milliseconds.
POLL_MS = 3000


def console_context(request: HttpRequest) -> dict[str, object]:
    """What every console page's frame needs (navigation for admins)."""
    return {
        "is_admin": has_role(request.user, Role.ADMIN),
        "tool_call_failures_url": tool_call_failures_url(),
        "poll_ms": POLL_MS,
    }


def queue_page(request: HttpRequest, filters: selectors.QueueFilters):  # type: ignore[no-untyped-def]
    tickets = selectors.ticket_queue(filters, user=request.user)
    return Paginator(tickets, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))


@require_GET
@staff_page()
def queue(request: HttpRequest) -> HttpResponse:
    filters = selectors.QueueFilters.from_query(request.GET)
    counts = selectors.ticket_status_counts(filters, user=request.user)
    context = {
        **console_context(request),
        "filters": filters,
        "page": queue_page(request, filters),
        "counts": counts,
        "status_tabs": [(status, counts[status]) for status in selectors.STATUS_FILTERS],
        "latest_id": selectors.ticket_latest_id(),
        "reasons": Ticket.Reason.choices,
        "priorities": Ticket.Priority.choices,
    }
    return render(request, "tickets/queue.html", context)


def _ticket_or_404(number: str) -> Ticket:
    try:
        return selectors.ticket_get(number=number)
    except Ticket.DoesNotExist as error:
        raise Http404("no such ticket") from error


@require_GET
@staff_page()
def ticket_detail(request: HttpRequest, number: str) -> HttpResponse:
    ticket = _ticket_or_404(number)
    transcript = list(selectors.conversation_messages(conversation_id=ticket.conversation_id))
    events = list(selectors.ticket_events(ticket=ticket))
    context = {
        **console_context(request),
        "ticket": ticket,
        "transcript": transcript,
        "last_message_id": transcript[-1].pk if transcript else 0,
        "passages": selectors.cited_passages(transcript),
        "tool_calls": selectors.conversation_tool_calls(conversation_id=ticket.conversation_id),
        "events": events,
        "notes": [event for event in events if event.kind == event.Kind.NOTE],
        "next_statuses": sorted(TRANSITIONS[Ticket.Status(ticket.status)]),
        "priorities": Ticket.Priority.choices,
        "staff": assignable_staff(),
    }
    return render(request, "tickets/ticket.html", context)


def _assignee(request: HttpRequest) -> AbstractBaseUser | None:
    value = request.POST.get("assignee", "")
    if not value:
        return None
    if not value.isdigit():
        raise TicketError("choose an agent from the list")
    try:
        return assignable_staff().get(pk=int(value))
    except get_user_model().DoesNotExist as error:
        raise TicketError("that person is not an active agent") from error


def _take(request: HttpRequest, ticket: Ticket) -> str:
    ticket_assign(ticket=ticket, assignee=request.user, actor=request.user)
    return "You took the ticket."


def _assign(request: HttpRequest, ticket: Ticket) -> str:
    ticket_assign(ticket=ticket, assignee=_assignee(request), actor=request.user)
    return "Assignee changed."


def _priority(request: HttpRequest, ticket: Ticket) -> str:
    ticket_priority_set(ticket=ticket, priority=request.POST.get("priority", ""), actor=request.user)
    return "Priority changed."


def _status(request: HttpRequest, ticket: Ticket) -> str:
    ticket = ticket_status_set(ticket=ticket, status=request.POST.get("status", ""), actor=request.user)
    return f"The ticket is {ticket.status} now."


def _note(request: HttpRequest, ticket: Ticket) -> str:
    ticket_note_add(ticket=ticket, text=request.POST.get("text", ""), actor=request.user)
    return "Note added."


def _reply(request: HttpRequest, ticket: Ticket) -> str:
    ticket_reply(ticket=ticket, text=request.POST.get("text", ""), actor=request.user)
    return "Reply sent: the customer sees it in the chat, and the assistant stays silent."


def _hand_back(request: HttpRequest, ticket: Ticket) -> str:
    ticket_hand_back(ticket=ticket, actor=request.user)
    return "Handed back: the assistant answers the customer again."


# The ticket page's forms name one of these in their ``action`` field; each returns what to tell the agent.
ACTIONS: dict[str, Callable[[HttpRequest, Ticket], str]] = {
    "take": _take,
    "assign": _assign,
    "priority": _priority,
    "status": _status,
    "note": _note,
    "reply": _reply,
    "hand_back": _hand_back,
}


@require_POST
@staff_page()
def ticket_action(request: HttpRequest, number: str) -> HttpResponse:
    """One form per action on the ticket page; back to the page with what happened (or why not)."""
    ticket = _ticket_or_404(number)
    action = ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        messages.error(request, "Unknown action.")
    else:
        try:
            messages.success(request, action(request, ticket))
        except TicketError as error:
            messages.error(request, f"Not done: {error}.")
    return redirect(reverse("console-ticket", args=[ticket.number]))


@require_GET
@staff_page()
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "tickets/dashboard.html", console_context(request))
