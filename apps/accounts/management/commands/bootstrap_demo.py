"""Create what a fresh local install needs to be tried: the demo staff accounts, the demo knowledge base
and the demo shop's orders.

Passwords come from DEMO_ADMIN_PASSWORD / DEMO_AGENT_PASSWORD, or are generated
and printed once, when the account is created.
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand

from apps.accounts.roles import Role
from apps.accounts.services import staff_user_ensure
from apps.knowledge.demo import demo_knowledge_base_load
from apps.orders.demo import demo_orders_load

DEMO_ACCOUNTS = (
    ("demo-admin", Role.ADMIN, "DEMO_ADMIN_PASSWORD"),
    ("demo-agent", Role.AGENT, "DEMO_AGENT_PASSWORD"),
)


class Command(BaseCommand):
    help = (
        "Create the demo accounts, queue the demo knowledge base's documents and load the demo orders "
        "(idempotent)."
    )

    def handle(self, *args: object, **options: object) -> None:
        for username, role, variable in DEMO_ACCOUNTS:
            result = staff_user_ensure(
                username=username, role=role, password=os.environ.get(variable) or None
            )
            if result.password and not os.environ.get(variable):
                self.stdout.write(
                    self.style.WARNING(
                        f"created {role.value} account {username!r} with password {result.password!r} "
                        f"(shown once; set {variable} to choose it)"
                    )
                )
            elif result.password:
                self.stdout.write(f"created {role.value} account {username!r} (password from {variable})")
            else:
                self.stdout.write(f"{role.value} account {username!r} exists")
        knowledge_base, results = demo_knowledge_base_load()
        queued = sum(result.queued for result in results)
        self.stdout.write(
            f"demo knowledge base {knowledge_base.slug!r}: {len(results)} documents, {queued} queued for ingestion"
        )
        orders = demo_orders_load()
        self.stdout.write(
            f"demo orders: {orders.customers} customers, {orders.orders} orders, {orders.shipments} shipments"
        )
