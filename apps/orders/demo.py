"""The demo shop's customers, orders and shipments, loaded by ``make run``.

The same file (``demo_data/orders.json``) scripts the sandbox carrier, so every
demo tracking number is known to it. Dates are relative to today, so the demo's
anomalies stay true on every run: ``DS20240501`` is always in transit with about
three days since its last scan. Loading again updates the rows in place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.orders.models import Customer, Order, Shipment

DEMO_ORDERS_FILE = Path(__file__).resolve().parent / "demo_data" / "orders.json"


@dataclass(frozen=True)
class DemoLoadResult:
    customers: int
    orders: int
    shipments: int


def demo_data(path: Path = DEMO_ORDERS_FILE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _order_total(items: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(item["unit_price"]) * int(item["quantity"]) for item in items), Decimal("0.00"))


@transaction.atomic
def demo_orders_load(path: Path = DEMO_ORDERS_FILE) -> DemoLoadResult:
    """Create or update every demo customer, order and shipment (idempotent).
    Dates move with today; what the carrier said (status, ``last_scan_*``) is left as tracked."""
    data = demo_data(path)
    unknown = {
        shipment["tracking_number"]
        for order in data["orders"]
        for shipment in order["shipments"]
        if shipment["tracking_number"] not in data["tracking"]
    }
    if unknown:
        raise ValueError(f"tracking numbers missing from the sandbox carrier's data: {sorted(unknown)}")

    now = timezone.now()
    today = timezone.localdate()
    customers: dict[str, Customer] = {}
    for row in data["customers"]:
        customers[row["external_id"]], _ = Customer.objects.update_or_create(
            external_id=row["external_id"],
            defaults={
                "name": row["name"],
                "email": row["email"],
                "phone": row["phone"],
                "preferred_language": row["preferred_language"],
            },
        )
    shipment_count = 0
    for row in data["orders"]:
        customer = customers[row["customer"]]
        order, _ = Order.objects.update_or_create(
            number=row["number"],
            defaults={
                "customer": customer,
                "contact_email": customer.email,
                "contact_phone": customer.phone,
                "items": row["items"],
                "total": _order_total(row["items"]),
                "currency": row["currency"],
                "status": row["status"],
                "placed_at": now - timedelta(days=row["placed_days_ago"], hours=3),
            },
        )
        for shipment in row["shipments"]:
            dates = {
                "order": order,
                "shipped_at": now - timedelta(days=shipment["shipped_days_ago"]),
                "promised_delivery_date": today + timedelta(days=shipment["promised_in_days"]),
            }
            Shipment.objects.update_or_create(
                carrier_code=shipment["carrier"],
                tracking_number=shipment["tracking_number"],
                defaults=dates,
                # The status is the shop's starting point; once tracked, it is the carrier's.
                create_defaults={**dates, "status": shipment["status"]},
            )
            shipment_count += 1
    return DemoLoadResult(customers=len(customers), orders=len(data["orders"]), shipments=shipment_count)
