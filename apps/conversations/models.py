"""Conversations between a shop's customers (widget visitors) and the assistant or an agent."""

from __future__ import annotations

from django.db import models

from apps.knowledge.models import KnowledgeBase


class Conversation(models.Model):
    class Status(models.TextChoices):
        BOT = "bot"
        WAITING_FOR_AGENT = "waiting_for_agent"
        AGENT = "agent"
        CLOSED = "closed"

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.PROTECT, related_name="conversations")
    # The visitor's bearer token is kept only as a sha256: a database leak reveals no tokens.
    visitor_token_hash = models.CharField(max_length=64, db_index=True)
    # Set only from an identity the shop's server signed (HMAC); never from what the visitor types.
    verified_customer_id = models.CharField(max_length=200, blank=True)
    language = models.CharField(max_length=8, default="en")
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.BOT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["status", "updated_at"], name="conversation_status_updated")]

    def __str__(self) -> str:
        return f"conversation {self.pk} ({self.status})"


class Message(models.Model):
    class Role(models.TextChoices):
        CUSTOMER = "customer"
        ASSISTANT = "assistant"
        AGENT = "agent"
        SYSTEM = "system"

    class Feedback(models.TextChoices):
        UP = "up"
        DOWN = "down"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField()
    # [{"n": 1, "chunk_id": 7, "document": "returns.md", "heading_path": [...], "quote": "..."}]
    citations = models.JSONField(default=list, blank=True)
    model = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # Why the assistant answered as it did: "answered", "low_confidence", "asked_for_person", "model_unavailable".
    outcome = models.CharField(max_length=32, blank=True)
    feedback = models.CharField(max_length=8, choices=Feedback.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.role} message {self.pk}"
