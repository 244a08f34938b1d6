"""shipment_track against the real sandbox carrier: the demo's anomalies, the cached scan, failures."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.orders.carriers import CarrierUnavailable, TrackingNotFound
from apps.orders.models import Order, Shipment
from apps.orders.services import shipment_track
from tests.conftest import SandboxCarrier

pytestmark = pytest.mark.usefixtures("demo_orders")

EXPECTED = {
    "DS20240501": ["stale_in_transit"],
    "DS20240502": [],
    "DS20240503": ["exception"],
    "DS20240504": ["lost"],
    "DS20240505": [],
    "DS20240506": ["past_promised_date"],
    "DS20240507": ["returned_to_sender"],
    "DS20240508": ["stale_in_transit"],
    "DS20240509": [],
}


@pytest.mark.parametrize(("number", "codes"), EXPECTED.items())
def test_each_demo_order_shows_its_anomaly(carrier: SandboxCarrier, number: str, codes: list[str]) -> None:
    shipment = Shipment.objects.select_related("order").get(order__number=number)
    result = shipment_track(shipment=shipment)
    assert [anomaly.code.value for anomaly in result.anomalies] == codes


def test_the_seed_shipment_caches_the_latest_scan(carrier: SandboxCarrier) -> None:
    shipment = Shipment.objects.get(order__number="DS20240501")
    assert shipment.last_checked_at is None
    before = timezone.now()

    result = shipment_track(shipment=shipment)

    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.IN_TRANSIT
    assert shipment.last_checked_at is not None and shipment.last_checked_at >= before
    assert shipment.last_scan_place == "上海浦东中转场"
    assert shipment.last_scan_status == "快件已到达【上海浦东中转场】"
    assert shipment.last_scan_at == result.tracking.events[0].time
    assert result.checked_at == shipment.last_checked_at
    assert result.anomalies[0].since == shipment.last_scan_at


def test_the_carriers_status_replaces_the_shops(carrier: SandboxCarrier) -> None:
    shipment = Shipment.objects.get(order__number="DS20240504")
    assert shipment.status == Shipment.Status.IN_TRANSIT
    shipment_track(shipment=shipment)
    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.LOST


@pytest.mark.parametrize(
    ("tracking_number", "error"),
    [("SBX-ERROR-503", CarrierUnavailable), ("SF9999999999999", TrackingNotFound)],
)
def test_a_failed_lookup_leaves_the_shipment_as_it_was(
    carrier: SandboxCarrier, tracking_number: str, error: type
) -> None:
    order = Order.objects.get(number="DS20240510")
    shipment = Shipment.objects.create(
        order=order,
        carrier_code="sandbox" if tracking_number.startswith("SBX") else "sf-express",
        tracking_number=tracking_number,
    )
    with pytest.raises(error):
        shipment_track(shipment=shipment)
    shipment.refresh_from_db()
    assert (shipment.status, shipment.last_checked_at, shipment.last_scan_at) == ("pending", None, None)
