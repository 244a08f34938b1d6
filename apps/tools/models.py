"""Tool steps: each call the assistant makes (an order lookup, a ticket, a handoff, a search) is a
durable row with a status, executed by a Celery task (``tasks.tool_call_execute``).

The row is the side effect's record: the agent console shows a conversation's calls, admins filter
the failed ones, and the chat turn waits on the row (``services.tool_call_wait``).
"""

from __future__ import annotations

from django.db import models

from apps.conversations.models import Conversation


class ToolCall(models.Model):
    class Tool(models.TextChoices):
        TRACK_SHIPMENT = "track_shipment"
        OPEN_TICKET = "open_ticket"
        HANDOFF_TO_HUMAN = "handoff_to_human"
        SEARCH_KNOWLEDGE_BASE = "search_knowledge_base"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    # The identity a tool acts for comes from here (the conversation's verified customer), never
    # from the arguments.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="tool_calls")
    # A step the application started because of another one's result (a ticket for an anomaly
    # the lookup found).
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="follow_ups"
    )
    tool = models.CharField(max_length=32, choices=Tool.choices)
    # Written by the application (from the customer's own words or a previous step), validated
    # by ``tools.arguments_parse`` before the row is created and again before it runs.
    arguments = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    # "<ErrorClass>: message" of the last failed attempt; kept when a retry succeeds later.
    error = models.TextField(blank=True)
    # One row per cause, e.g. "msg:42:track_shipment" (a customer message) or
    # "call:7:open_ticket:stale_in_transit" (a follow-up): a turn or task run twice finds it.
    idempotency_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="toolcall_conversation_created"),
            models.Index(fields=["status", "created_at"], name="toolcall_status_created"),
            models.Index(fields=["tool", "status"], name="toolcall_tool_status"),
        ]

    def __str__(self) -> str:
        return f"{self.tool} #{self.pk} ({self.status})"

    @property
    def done(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)
