"""Tickets: a conversation (or an order problem) a person must look at, with an audit trail of every change."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.conversations.models import Conversation
from apps.orders.models import Customer, Order


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        PENDING = "pending"  # waiting on the customer or a third party (the carrier)
        RESOLVED = "resolved"
        CLOSED = "closed"

    class Reason(models.TextChoices):
        ANOMALY = "anomaly"
        ASKED_FOR_PERSON = "asked_for_person"
        LOW_CONFIDENCE = "low_confidence"
        NEGATIVE_FEEDBACK = "negative_feedback"

    class Priority(models.TextChoices):
        LOW = "low"
        NORMAL = "normal"
        HIGH = "high"
        URGENT = "urgent"

    # Human-facing number, e.g. T-000042: derived from the primary key once the row exists.
    number = models.CharField(max_length=16, unique=True, blank=True)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets"
    )
    order = models.ForeignKey(Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets")
    reason = models.CharField(max_length=24, choices=Reason.choices)
    # What exactly happened, e.g. the anomaly code ("stale_in_transit") or the customer's words.
    detail = models.TextField(blank=True)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets"
    )
    sla_due_at = models.DateTimeField()
    # Idempotency: the same problem opens one ticket however often it is reported or a task is redelivered.
    # For an anomaly: "anomaly:<order number>:<anomaly code>"; for a conversation: "<reason>:conversation:<id>".
    dedupe_key = models.CharField(max_length=200, unique=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "sla_due_at"], name="ticket_status_sla"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
        ]

    def __str__(self) -> str:
        return f"{self.number} ({self.status})"


class TicketEvent(models.Model):
    """One change to a ticket: who, what, before and after. Notes are events too (internal, never shown
    to the customer)."""

    class Kind(models.TextChoices):
        OPENED = "opened"
        REPORTED_AGAIN = "reported_again"
        STATUS = "status"
        ASSIGNED = "assigned"
        PRIORITY = "priority"
        NOTE = "note"
        REPLY = "reply"
        HANDED_BACK = "handed_back"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    before = models.CharField(max_length=200, blank=True)
    after = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"
