"""Links from the console to Django admin pages that other apps register."""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse


def tool_call_failures_url() -> str | None:
    """The admin's list of failed tool calls, once ``apps.tools`` registers its ToolCall admin;
    None until then (the console shows a placeholder)."""
    try:
        return reverse("admin:tools_toolcall_changelist") + "?status__exact=failed"
    except NoReverseMatch:
        return None
