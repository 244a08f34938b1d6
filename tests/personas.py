"""Named people for authorisation tests: an admin, an agent, and anonymous visitors."""

from __future__ import annotations

from dataclasses import dataclass

from django.test import Client

from apps.accounts.roles import Role
from apps.accounts.services import staff_user_ensure


@dataclass
class Personas:
    def client(self, name: str) -> Client:
        client = Client()
        if name == "admin":
            client.force_login(staff_user_ensure(username="alice-admin", role=Role.ADMIN).user)
        elif name == "agent":
            client.force_login(staff_user_ensure(username="bob-agent", role=Role.AGENT).user)
        elif name == "customer":
            # Customers are widget visitors without accounts: to the admin API, anonymous.
            pass
        elif name != "anonymous":
            raise ValueError(f"unknown persona {name!r}")
        return client
