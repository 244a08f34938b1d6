"""The demo orders: loaded by bootstrap_demo, idempotent, one order per anomaly."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.orders.demo import demo_data
from apps.orders.models import Customer, Order, Shipment

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, int, int]:
    return Customer.objects.count(), Order.objects.count(), Shipment.objects.count()


def test_loading_twice_creates_nothing_twice() -> None:
    out = io.StringIO()
    call_command("orders_load_demo", stdout=out)
    first = _counts()
    call_command("orders_load_demo", stdout=out)
    assert _counts() == first == (5, 10, 9)
    assert out.getvalue().count("demo orders: 5 customers, 10 orders, 9 shipments") == 2


def test_bootstrap_demo_loads_the_orders() -> None:
    out = io.StringIO()
    call_command("bootstrap_demo", stdout=out)
    assert "demo orders: 5 customers, 10 orders, 9 shipments" in out.getvalue()
    assert Order.objects.filter(number="DS20240501").exists()


def test_the_seed_order_and_its_shipment() -> None:
    call_command("orders_load_demo", stdout=io.StringIO())
    order = Order.objects.select_related("customer").get(number="DS20240501")
    assert order.status == Order.Status.SHIPPED
    assert order.customer.preferred_language == "zh"
    assert order.contact_email == order.customer.email == "li.wei@example.cn"
    assert str(order.total) == "588.00" and order.currency == "CNY"
    (shipment,) = order.shipments.all()
    assert (shipment.carrier_code, shipment.tracking_number) == ("sf-express", "SF1402938475610")
    assert shipment.promised_delivery_date == timezone.localdate() + timedelta(days=2)


def test_both_languages_are_represented() -> None:
    call_command("orders_load_demo", stdout=io.StringIO())
    assert set(Customer.objects.values_list("preferred_language", flat=True)) == {"zh", "en"}
    assert set(Order.objects.values_list("currency", flat=True)) == {"CNY", "GBP", "USD"}


def test_reloading_keeps_what_the_carrier_said_and_moves_the_dates() -> None:
    call_command("orders_load_demo", stdout=io.StringIO())
    shipment = Shipment.objects.get(tracking_number="75318204967350")
    now = timezone.now()
    Shipment.objects.filter(pk=shipment.pk).update(
        status=Shipment.Status.LOST,
        last_scan_at=now,
        last_scan_place="成都转运中心",
        promised_delivery_date=None,
    )
    call_command("orders_load_demo", stdout=io.StringIO())
    shipment.refresh_from_db()
    assert (shipment.status, shipment.last_scan_at, shipment.last_scan_place) == ("lost", now, "成都转运中心")
    assert shipment.promised_delivery_date == timezone.localdate() - timedelta(days=3)


def test_every_demo_tracking_number_is_scripted_for_the_sandbox() -> None:
    data = demo_data()
    for order in data["orders"]:
        for shipment in order["shipments"]:
            script = data["tracking"][shipment["tracking_number"]]
            assert script["carrier"] == shipment["carrier"]
