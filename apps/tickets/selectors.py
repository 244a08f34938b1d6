"""Ticket reads for the agent console: the queue with its filters and counts, one ticket with its
conversation, and the new-since-id queries the console polls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.conversations.models import Conversation, Message
from apps.tickets.models import Ticket, TicketEvent

# Tickets a person still has to act on; the queue shows these unless asked for another status.
ACTIVE_STATUSES = (Ticket.Status.OPEN, Ticket.Status.PENDING)
STATUS_FILTERS = ("active", *Ticket.Status.values, "all")
ASSIGNEE_FILTERS = ("all", "mine", "unassigned")


@dataclass(frozen=True)
class QueueFilters:
    status: str = "active"
    reason: str = ""
    assignee: str = "all"
    priority: str = ""

    @classmethod
    def from_query(cls, query: Any) -> QueueFilters:
        """From a request's GET parameters; unknown values fall back to "no filter"."""
        status = query.get("status", "active")
        reason = query.get("reason", "")
        assignee = query.get("assignee", "all")
        priority = query.get("priority", "")
        return cls(
            status=status if status in STATUS_FILTERS else "active",
            reason=reason if reason in Ticket.Reason.values else "",
            assignee=assignee if assignee in ASSIGNEE_FILTERS else "all",
            priority=priority if priority in Ticket.Priority.values else "",
        )

    def querystring(self) -> str:
        """The filters as a URL query, for links that keep them (pagination, the poll)."""
        return urlencode(
            {
                "status": self.status,
                "reason": self.reason,
                "assignee": self.assignee,
                "priority": self.priority,
            }
        )


def _filtered_except_status(filters: QueueFilters, *, user: AbstractBaseUser) -> QuerySet[Ticket]:
    tickets = Ticket.objects.all()
    if filters.reason:
        tickets = tickets.filter(reason=filters.reason)
    if filters.priority:
        tickets = tickets.filter(priority=filters.priority)
    if filters.assignee == "mine":
        tickets = tickets.filter(assignee=user)
    elif filters.assignee == "unassigned":
        tickets = tickets.filter(assignee__isnull=True)
    return tickets


def ticket_queue(
    filters: QueueFilters, *, user: AbstractBaseUser, now: datetime | None = None
) -> QuerySet[Ticket]:
    """The queue: unassigned first, then by SLA due time (soonest first); each row knows whether it
    breaches its SLA. One query, whatever the page size."""
    now = now or timezone.now()
    tickets = _filtered_except_status(filters, user=user)
    if filters.status == "active":
        tickets = tickets.filter(status__in=ACTIVE_STATUSES)
    elif filters.status != "all":
        tickets = tickets.filter(status=filters.status)
    return (
        tickets.select_related("assignee", "customer", "order", "conversation")
        .annotate(
            unassigned_rank=Case(
                When(assignee__isnull=True, then=Value(0)), default=Value(1), output_field=IntegerField()
            ),
            sla_breached=Case(
                When(sla_due_at__lt=now, status__in=ACTIVE_STATUSES, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .order_by("unassigned_rank", "sla_due_at", "pk")
    )


def ticket_status_counts(filters: QueueFilters, *, user: AbstractBaseUser) -> dict[str, int]:
    """Tickets per status under the other filters (reason, assignee, priority), in one query;
    ``active`` is open + pending, ``all`` every status."""
    counts = _filtered_except_status(filters, user=user).aggregate(
        **{status: Count("pk", filter=Q(status=status)) for status in Ticket.Status.values},
        all=Count("pk"),
    )
    counts["active"] = sum(counts[status] for status in ACTIVE_STATUSES)
    return counts


def ticket_latest_id() -> int:
    return Ticket.objects.aggregate(latest=Max("pk"))["latest"] or 0


def tickets_opened_after(ticket_id: int) -> QuerySet[Ticket]:
    """Tickets opened since the console last looked (ids grow with time)."""
    return Ticket.objects.filter(pk__gt=ticket_id).order_by("pk")


def ticket_get(*, number: str) -> Ticket:
    return Ticket.objects.select_related("assignee", "customer", "order", "conversation").get(number=number)


def ticket_events(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    """The audit trail, oldest first; notes are events of kind ``note``."""
    return ticket.events.select_related("actor").order_by("created_at", "pk")


def conversation_messages(*, conversation_id: int | None, after: int = 0) -> QuerySet[Message]:
    """The whole transcript (customer, assistant and agent messages), oldest first; with ``after``
    only what came since that message id (the ticket page polls this)."""
    if conversation_id is None:
        return Message.objects.none()
    return Message.objects.filter(conversation_id=conversation_id, pk__gt=after).order_by("created_at", "pk")


def cited_passages(messages: list[Message]) -> list[dict[str, Any]]:
    """The passages the assistant cited in these messages, each once (by chunk), in order of first use."""
    seen: set[Any] = set()
    passages = []
    for message in messages:
        for citation in message.citations or []:
            key = citation.get("chunk_id") or (citation.get("document"), citation.get("quote"))
            if key in seen:
                continue
            seen.add(key)
            passages.append({**citation, "message_id": message.pk})
    return passages


def conversation_tool_calls(*, conversation_id: int | None) -> list[Any]:
    """The tool calls made in a conversation, oldest first, with their results and errors.

    ``apps.tools`` (tool steps run by Celery) is built alongside the console; until it is installed
    there are no tool calls to show."""
    if conversation_id is None or not apps.is_installed("apps.tools"):
        return []
    tool_call = apps.get_model("tools", "ToolCall")
    return list(tool_call.objects.filter(conversation_id=conversation_id).order_by("created_at", "pk"))


# --- The dashboard: aggregate queries over a window of days ----------------------------------


class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5)``: the median, interpolated; works on intervals."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"


@dataclass(frozen=True)
class DashboardStats:
    days: list[str]
    conversations_per_day: list[int]
    conversations: int
    resolved_by_bot: int
    escalated: int
    escalation_reasons: dict[str, int]
    median_first_response_seconds: float | None
    answers_rated: int
    thumbs_up: int

    @property
    def thumbs_up_rate(self) -> float | None:
        return self.thumbs_up / self.answers_rated if self.answers_rated else None

    def as_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "conversations_per_day": self.conversations_per_day,
            "conversations": self.conversations,
            "resolved_by_bot": self.resolved_by_bot,
            "escalated": self.escalated,
            "escalation_reasons": self.escalation_reasons,
            "median_first_response_seconds": self.median_first_response_seconds,
            "answers_rated": self.answers_rated,
            "thumbs_up": self.thumbs_up,
            "thumbs_up_rate": self.thumbs_up_rate,
        }


def dashboard_stats(*, days: int, now: datetime | None = None) -> DashboardStats:
    """Conversations, escalations, agents' first response and customers' ratings over the last ``days``
    days (today included, days in ``TIME_ZONE``). A conversation counts as escalated when it has a
    ticket or is waiting for or with a person; every other one was resolved by the bot."""
    now = timezone.localtime(now or timezone.now())
    first_day = now.date() - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first_day, time.min), now.tzinfo)

    conversations = Conversation.objects.filter(created_at__gte=start)
    per_day = dict(
        conversations.annotate(day=TruncDate("created_at", tzinfo=now.tzinfo))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    day_list = [first_day + timedelta(days=offset) for offset in range(days)]

    with_person = Exists(Ticket.objects.filter(conversation=OuterRef("pk")))
    totals = conversations.annotate(with_ticket=with_person).aggregate(
        total=Count("pk"),
        escalated=Count(
            "pk",
            filter=Q(with_ticket=True)
            | Q(status__in=[Conversation.Status.WAITING_FOR_AGENT, Conversation.Status.AGENT]),
        ),
    )

    tickets = Ticket.objects.filter(created_at__gte=start)
    reasons = dict(tickets.values("reason").annotate(n=Count("pk")).values_list("reason", "n"))
    median = tickets.filter(first_response_at__isnull=False).aggregate(
        median=Median(
            ExpressionWrapper(F("first_response_at") - F("created_at"), output_field=DurationField()),
            output_field=DurationField(),
        )
    )["median"]

    ratings = Message.objects.filter(
        role=Message.Role.ASSISTANT, created_at__gte=start, feedback__in=Message.Feedback.values
    ).aggregate(rated=Count("pk"), up=Count("pk", filter=Q(feedback=Message.Feedback.UP)))

    return DashboardStats(
        days=[day.isoformat() for day in day_list],
        conversations_per_day=[per_day.get(day, 0) for day in day_list],
        conversations=totals["total"],
        resolved_by_bot=totals["total"] - totals["escalated"],
        escalated=totals["escalated"],
        escalation_reasons={reason: reasons.get(reason, 0) for reason in Ticket.Reason.values},
        median_first_response_seconds=median.total_seconds() if median is not None else None,
        answers_rated=ratings["rated"],
        thumbs_up=ratings["up"],
    )
