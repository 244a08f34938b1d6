"""Admins see every tool call, filter the failed ones, and read their arguments, results and errors."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from apps.tools.models import ToolCall


@admin.register(ToolCall)
class ToolCallAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "tool",
        "status",
        "attempts",
        "conversation",
        "short_error",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "tool", "created_at"]
    search_fields = ["=conversation__pk", "idempotency_key", "error"]
    list_select_related = ["conversation"]
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in ToolCall._meta.fields]

    @admin.display(description="error")
    def short_error(self, call: ToolCall) -> str:
        return call.error[:120]

    # A record of what happened: nobody edits or adds history by hand.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ToolCall | None = None) -> bool:
        return False
