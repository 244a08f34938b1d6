"""Writes for orders and logistics: asking the carrier about a shipment and caching its answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from apps.core.logging import log_context
from apps.orders.anomalies import Anomaly, AnomalyRules, shipment_anomalies
from apps.orders.carriers import CarrierClient, Tracking, carrier_client
from apps.orders.models import Shipment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShipmentTrackResult:
    shipment: Shipment
    tracking: Tracking
    anomalies: list[Anomaly]
    checked_at: datetime


def shipment_track(
    *,
    shipment: Shipment,
    client: CarrierClient | None = None,
    rules: AnomalyRules | None = None,
    now: datetime | None = None,
) -> ShipmentTrackResult:
    """Ask the carrier about ``shipment``, cache the latest scan on it, and check the anomaly rules.

    Carrier failures propagate as ``carriers.CarrierError`` subclasses and leave the
    shipment as it was; the caller (a tool step) decides what to tell the customer.
    """
    client = client or carrier_client()
    with log_context(order=shipment.order.number, shipment_id=shipment.pk):
        tracking = client.track(tracking_number=shipment.tracking_number, carrier_code=shipment.carrier_code)
        checked_at = now or timezone.now()
        latest = tracking.latest_event
        shipment.status = Shipment.Status(tracking.status.value)
        shipment.last_checked_at = checked_at
        if latest is not None:
            shipment.last_scan_at = latest.time
            shipment.last_scan_place = latest.place[:200]
            shipment.last_scan_status = latest.description[:300]
        shipment.save(
            update_fields=[
                "status",
                "last_checked_at",
                "last_scan_at",
                "last_scan_place",
                "last_scan_status",
                "updated_at",
            ]
        )
        anomalies = shipment_anomalies(tracking, shipment, checked_at, rules)
        logger.info(
            "shipment tracked",
            extra={
                "status": tracking.status.value,
                "anomalies": [anomaly.code.value for anomaly in anomalies],
            },
        )
    return ShipmentTrackResult(
        shipment=shipment, tracking=tracking, anomalies=anomalies, checked_at=checked_at
    )
