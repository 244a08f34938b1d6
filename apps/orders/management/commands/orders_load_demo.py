"""python manage.py orders_load_demo"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.orders.demo import DEMO_ORDERS_FILE, demo_orders_load


class Command(BaseCommand):
    help = (
        "Create or update the demo shop's customers, orders and shipments (idempotent). "
        f"Data: {DEMO_ORDERS_FILE.relative_to(DEMO_ORDERS_FILE.parents[3])}, shared with the sandbox carrier."
    )

    def handle(self, *args: object, **options: object) -> None:
        result = demo_orders_load()
        self.stdout.write(
            f"demo orders: {result.customers} customers, {result.orders} orders, {result.shipments} shipments"
        )
