"""The two staff roles. Customers are widget visitors without accounts."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # uploads policy documents, manages agents, sees tool failures
    AGENT = "agent"  # works escalated tickets in the console
