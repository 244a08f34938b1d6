"""The anomaly rules as pure functions: each rule, the healthy case, thresholds and switches from settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from apps.orders.anomalies import AnomalyCode, shipment_anomalies
from apps.orders.carriers import ScanEvent, Tracking, TrackingStatus
from apps.orders.models import Shipment

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
TODAY = NOW.date()


def _tracking(status: TrackingStatus, *scans_hours_ago: float) -> Tracking:
    events = tuple(
        ScanEvent(time=NOW - timedelta(hours=hours), place="Hub", status=status, description="scan")
        for hours in sorted(scans_hours_ago)
    )
    return Tracking(
        tracking_number="SF1402938475610", carrier_code="sf-express", status=status, events=events
    )


def _shipment(promised: date | None = TODAY + timedelta(days=2)) -> Shipment:
    # Unsaved: the rules read the shipment, never the database.
    return Shipment(
        carrier_code="sf-express", tracking_number="SF1402938475610", promised_delivery_date=promised
    )


def _codes(tracking: Tracking, shipment: Shipment | None = None) -> list[str]:
    return [anomaly.code.value for anomaly in shipment_anomalies(tracking, shipment or _shipment(), NOW)]


@pytest.mark.parametrize(
    "tracking",
    [
        _tracking(TrackingStatus.IN_TRANSIT, 100, 40, 6),
        _tracking(TrackingStatus.OUT_FOR_DELIVERY, 30, 2),
        _tracking(TrackingStatus.INFO_RECEIVED, 10),
        _tracking(TrackingStatus.DELIVERED, 200, 100),  # delivered long ago: silence is fine
    ],
)
def test_healthy_shipments_have_no_anomaly(tracking: Tracking) -> None:
    assert _codes(tracking) == []


def test_no_scan_for_more_than_72_hours_in_transit_is_stale() -> None:
    anomalies = shipment_anomalies(_tracking(TrackingStatus.IN_TRANSIT, 120, 76), _shipment(), NOW)
    assert [anomaly.code for anomaly in anomalies] == [AnomalyCode.STALE_IN_TRANSIT]
    assert anomalies[0].since == NOW - timedelta(hours=76)
    assert "76 hours" in anomalies[0].detail


def test_the_stale_threshold_is_exclusive() -> None:
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 72)) == []
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 72.02)) == ["stale_in_transit"]


def test_the_stale_threshold_comes_from_settings(settings) -> None:
    settings.ORDERS_STALE_SCAN_HOURS = 24
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 30)) == ["stale_in_transit"]
    settings.ORDERS_STALE_SCAN_HOURS = 96
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 76)) == []


def test_without_events_the_cached_last_scan_counts() -> None:
    shipment = _shipment()
    shipment.last_scan_at = NOW - timedelta(hours=80)
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT), shipment) == ["stale_in_transit"]
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT)) == []  # never scanned: nothing to measure


def test_exception_and_lost() -> None:
    assert _codes(_tracking(TrackingStatus.EXCEPTION, 20)) == ["exception"]
    assert _codes(_tracking(TrackingStatus.LOST, 30)) == ["lost"]


def test_returned_to_sender() -> None:
    assert _codes(_tracking(TrackingStatus.RETURNED_TO_SENDER, 190, 40)) == ["returned_to_sender"]


def test_past_the_promised_date_and_not_delivered() -> None:
    late = _shipment(promised=TODAY - timedelta(days=2))
    anomalies = shipment_anomalies(_tracking(TrackingStatus.IN_TRANSIT, 9), late, NOW)
    assert [anomaly.code for anomaly in anomalies] == [AnomalyCode.PAST_PROMISED_DATE]
    assert anomalies[0].since == TODAY - timedelta(days=2)
    # Due today is not late yet; delivered is never late.
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 9), _shipment(promised=TODAY)) == []
    assert _codes(_tracking(TrackingStatus.DELIVERED, 9), late) == []
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 9), _shipment(promised=None)) == []


def test_the_promised_date_is_judged_in_the_shops_time_zone(settings) -> None:
    # 03:30 UTC on 4 May is still the evening of 3 May in Los Angeles.
    early = datetime(2026, 5, 4, 3, 30, tzinfo=UTC)
    shipment = _shipment(promised=date(2026, 5, 3))
    tracking = _tracking(TrackingStatus.IN_TRANSIT, 9)
    assert [a.code for a in shipment_anomalies(tracking, shipment, early)] == [AnomalyCode.PAST_PROMISED_DATE]
    settings.TIME_ZONE = "America/Los_Angeles"
    assert shipment_anomalies(tracking, shipment, early) == []


def test_late_grace_days_from_settings(settings) -> None:
    shipment = _shipment(promised=TODAY - timedelta(days=2))
    settings.ORDERS_LATE_GRACE_DAYS = 2
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 9), shipment) == []
    settings.ORDERS_LATE_GRACE_DAYS = 1
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 9), shipment) == ["past_promised_date"]


def test_lost_or_returned_parcels_are_not_also_late() -> None:
    late = _shipment(promised=TODAY - timedelta(days=3))
    assert _codes(_tracking(TrackingStatus.LOST, 30), late) == ["lost"]
    assert _codes(_tracking(TrackingStatus.RETURNED_TO_SENDER, 40), late) == ["returned_to_sender"]


def test_several_anomalies_come_in_a_fixed_order() -> None:
    late = _shipment(promised=TODAY - timedelta(days=1))
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 100), late) == [
        "stale_in_transit",
        "past_promised_date",
    ]
    assert _codes(_tracking(TrackingStatus.EXCEPTION, 100), late) == ["exception", "past_promised_date"]


def test_rules_can_be_switched_off_in_settings(settings) -> None:
    late = _shipment(promised=TODAY - timedelta(days=1))
    settings.ORDERS_ANOMALY_RULES = ["past_promised_date"]
    assert _codes(_tracking(TrackingStatus.IN_TRANSIT, 100), late) == ["past_promised_date"]
    settings.ORDERS_ANOMALY_RULES = []
    assert _codes(_tracking(TrackingStatus.LOST, 1), late) == []


def test_codes_are_stable_strings() -> None:
    # They become ticket idempotency keys: renaming one would open duplicate tickets.
    assert [code.value for code in AnomalyCode] == [
        "stale_in_transit",
        "exception",
        "lost",
        "past_promised_date",
        "returned_to_sender",
    ]
