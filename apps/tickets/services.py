"""Ticket writes: open (idempotent), assign, change status, notes, replies to the customer, hand back.

Every change writes a :class:`TicketEvent` in the same transaction, so the audit trail cannot miss one.
State changes lock the ticket row (``select_for_update``): two agents acting at once are serialised.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.permissions import has_role
from apps.accounts.roles import Role
from apps.conversations.models import Conversation, Message
from apps.core.metrics import escalation_count
from apps.orders.models import Customer, Order
from apps.tickets.models import Ticket, TicketEvent

logger = logging.getLogger(__name__)

DEFAULT_PRIORITY = {
    Ticket.Reason.ANOMALY: Ticket.Priority.HIGH,
    Ticket.Reason.ASKED_FOR_PERSON: Ticket.Priority.NORMAL,
    Ticket.Reason.LOW_CONFIDENCE: Ticket.Priority.NORMAL,
    Ticket.Reason.NEGATIVE_FEEDBACK: Ticket.Priority.LOW,
}

# Status changes an agent may make; anything else is refused with TicketTransitionError.
TRANSITIONS = {
    Ticket.Status.OPEN: {Ticket.Status.PENDING, Ticket.Status.RESOLVED},
    Ticket.Status.PENDING: {Ticket.Status.OPEN, Ticket.Status.RESOLVED},
    Ticket.Status.RESOLVED: {Ticket.Status.OPEN, Ticket.Status.CLOSED},
    Ticket.Status.CLOSED: set(),
}


class TicketError(Exception):
    """A ticket operation that is not allowed; the message is safe to show to an agent."""


class TicketTransitionError(TicketError):
    pass


def sla_due(*, priority: str, opened_at: timezone.datetime) -> timezone.datetime:
    return opened_at + timedelta(minutes=settings.TICKET_SLA_MINUTES[priority])


def ticket_open(
    *,
    reason: str,
    dedupe_key: str,
    conversation: Conversation | None = None,
    customer: Customer | None = None,
    order: Order | None = None,
    detail: str = "",
    priority: str | None = None,
) -> tuple[Ticket, bool]:
    """Open a ticket for a problem, or return the one already open for it (``created`` False).

    ``dedupe_key`` is unique in the database: a redelivered task or a customer asking twice finds the
    existing row (the race between two concurrent callers is settled by the unique constraint).
    A report of a problem whose ticket was resolved reopens it.
    """
    priority = priority or DEFAULT_PRIORITY[Ticket.Reason(reason)]
    now = timezone.now()
    try:
        with transaction.atomic():
            ticket = Ticket.objects.create(
                reason=reason,
                dedupe_key=dedupe_key,
                conversation=conversation,
                customer=customer,
                order=order,
                detail=detail,
                priority=priority,
                sla_due_at=sla_due(priority=priority, opened_at=now),
            )
            ticket.number = f"T-{ticket.pk:06d}"
            ticket.save(update_fields=["number"])
            TicketEvent.objects.create(ticket=ticket, kind=TicketEvent.Kind.OPENED, after=reason, text=detail)
            if conversation is not None and conversation.status == Conversation.Status.BOT:
                Conversation.objects.filter(pk=conversation.pk, status=Conversation.Status.BOT).update(
                    status=Conversation.Status.WAITING_FOR_AGENT, updated_at=now
                )
        logger.info("ticket opened", extra={"ticket": ticket.number, "reason": reason})
        transaction.on_commit(lambda: escalation_count(reason=reason))
        return ticket, True
    except IntegrityError:
        pass
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().get(dedupe_key=dedupe_key)
        if ticket.status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
            _set_status(ticket, Ticket.Status.OPEN, actor=None, text="reported again")
        TicketEvent.objects.create(ticket=ticket, kind=TicketEvent.Kind.REPORTED_AGAIN, text=detail)
    return ticket, False


def _staff(user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    if user is not None and not (has_role(user, Role.AGENT) or has_role(user, Role.ADMIN)):
        raise TicketError("only agents and admins work tickets")
    return user


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _set_status(ticket: Ticket, status: str, *, actor: AbstractBaseUser | None, text: str = "") -> None:
    before = ticket.status
    ticket.status = status
    ticket.resolved_at = timezone.now() if status == Ticket.Status.RESOLVED else ticket.resolved_at
    ticket.save(update_fields=["status", "resolved_at", "updated_at"])
    TicketEvent.objects.create(
        ticket=ticket, kind=TicketEvent.Kind.STATUS, actor=actor, before=before, after=status, text=text
    )


def ticket_status_set(*, ticket: Ticket, status: str, actor: AbstractBaseUser) -> Ticket:
    _staff(actor)
    with transaction.atomic():
        ticket = _locked(ticket)
        if status not in TRANSITIONS[Ticket.Status(ticket.status)]:
            raise TicketTransitionError(f"a ticket that is {ticket.status} cannot become {status}")
        _set_status(ticket, status, actor=actor)
        if status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED) and ticket.conversation_id:
            # The person is done: the assistant answers again if the customer writes.
            Conversation.objects.filter(pk=ticket.conversation_id).exclude(
                status=Conversation.Status.CLOSED
            ).update(status=Conversation.Status.BOT, updated_at=timezone.now())
    return ticket


def ticket_assign(*, ticket: Ticket, assignee: AbstractBaseUser | None, actor: AbstractBaseUser) -> Ticket:
    """Assign to an agent (or unassign with None). Taking a ticket is assigning it to oneself."""
    _staff(actor)
    _staff(assignee)
    with transaction.atomic():
        ticket = _locked(ticket)
        before = ticket.assignee.get_username() if ticket.assignee else ""
        ticket.assignee = assignee
        ticket.save(update_fields=["assignee", "updated_at"])
        TicketEvent.objects.create(
            ticket=ticket,
            kind=TicketEvent.Kind.ASSIGNED,
            actor=actor,
            before=before,
            after=assignee.get_username() if assignee else "",
        )
    return ticket


def ticket_priority_set(*, ticket: Ticket, priority: str, actor: AbstractBaseUser) -> Ticket:
    _staff(actor)
    if priority not in Ticket.Priority.values:
        raise TicketError(f"unknown priority {priority!r}; one of {', '.join(Ticket.Priority.values)}")
    with transaction.atomic():
        ticket = _locked(ticket)
        before = ticket.priority
        ticket.priority = priority
        ticket.sla_due_at = sla_due(priority=priority, opened_at=ticket.created_at)
        ticket.save(update_fields=["priority", "sla_due_at", "updated_at"])
        TicketEvent.objects.create(
            ticket=ticket, kind=TicketEvent.Kind.PRIORITY, actor=actor, before=before, after=priority
        )
    return ticket


def ticket_note_add(*, ticket: Ticket, text: str, actor: AbstractBaseUser) -> TicketEvent:
    """An internal note: agents see it, the customer never does."""
    _staff(actor)
    text = text.strip()
    if not text:
        raise TicketError("a note needs text")
    return TicketEvent.objects.create(ticket=ticket, kind=TicketEvent.Kind.NOTE, actor=actor, text=text)


def ticket_reply(*, ticket: Ticket, text: str, actor: AbstractBaseUser) -> Message:
    """Send ``text`` to the customer in the ticket's conversation. The agent now owns the
    conversation, so the assistant stays silent until the ticket is resolved or handed back."""
    _staff(actor)
    text = text.strip()
    if not text:
        raise TicketError("a reply needs text")
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise TicketError(f"a reply can have at most {settings.CHAT_MAX_MESSAGE_CHARS} characters")
    if ticket.conversation_id is None:
        raise TicketError("this ticket has no conversation to reply in")
    with transaction.atomic():
        ticket = _locked(ticket)
        conversation = Conversation.objects.select_for_update().get(pk=ticket.conversation_id)
        if conversation.status == Conversation.Status.CLOSED:
            raise TicketError("the conversation is closed")
        message = Message.objects.create(conversation=conversation, role=Message.Role.AGENT, text=text)
        conversation.status = Conversation.Status.AGENT
        conversation.save(update_fields=["status", "updated_at"])
        update = ["updated_at"]
        if ticket.first_response_at is None:
            ticket.first_response_at = message.created_at
            update.append("first_response_at")
        if ticket.assignee_id is None:
            ticket.assignee = actor
            update.append("assignee")
        ticket.save(update_fields=update)
        TicketEvent.objects.create(ticket=ticket, kind=TicketEvent.Kind.REPLY, actor=actor, text=text)
    return message


def ticket_hand_back(*, ticket: Ticket, actor: AbstractBaseUser) -> Ticket:
    """Give the conversation back to the assistant; the ticket stays as it is."""
    _staff(actor)
    with transaction.atomic():
        ticket = _locked(ticket)
        if ticket.conversation_id:
            Conversation.objects.filter(pk=ticket.conversation_id).exclude(
                status=Conversation.Status.CLOSED
            ).update(status=Conversation.Status.BOT, updated_at=timezone.now())
        TicketEvent.objects.create(ticket=ticket, kind=TicketEvent.Kind.HANDED_BACK, actor=actor)
    return ticket
