"""The admin pages for customers, orders and shipments, and the "ask the carrier now" action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.orders.models import Customer, Order, Shipment
from tests.conftest import SandboxCarrier
from tests.personas import Personas

pytestmark = pytest.mark.usefixtures("demo_orders")


@pytest.mark.parametrize("model", [Customer, Order, Shipment])
def test_admins_see_the_lists_and_pages(personas: Personas, model: type) -> None:
    client = personas.client("admin")
    meta = model._meta
    response = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert response.status_code == 200
    page = client.get(
        reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[model.objects.first().pk])
    )
    assert page.status_code == 200


@pytest.mark.parametrize("persona", ["anonymous", "agent"])
def test_others_do_not(personas: Personas, persona: str) -> None:
    response = personas.client(persona).get(reverse("admin:orders_order_changelist"))
    assert response.status_code in (302, 403)


def test_search_an_order_by_number(personas: Personas) -> None:
    response = personas.client("admin").get(reverse("admin:orders_order_changelist"), {"q": "DS20240501"})
    assert response.context["cl"].result_count == 1


def test_ask_the_carrier_now(personas: Personas, carrier: SandboxCarrier) -> None:
    shipments = Shipment.objects.filter(order__number__in=["DS20240501", "DS20240502"]).order_by(
        "order__number"
    )
    response = personas.client("admin").post(
        reverse("admin:orders_shipment_changelist"),
        {"action": "track_now", "_selected_action": [shipment.pk for shipment in shipments]},
        follow=True,
    )
    messages = [str(message) for message in response.context["messages"]]
    assert "sf-express SF1402938475610: in_transit; anomalies: stale_in_transit" in messages
    assert "dhl 4829105736: delivered; anomalies: none" in messages
    assert Shipment.objects.get(tracking_number="SF1402938475610").last_checked_at is not None
