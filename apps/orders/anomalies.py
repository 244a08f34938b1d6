"""Shipment anomaly rules: pure functions of what the carrier said, the shipment and the time.

Each anomaly has a stable ``code``; together with the order it is the idempotency
key of the ticket it opens (one ticket per anomaly per order). Rules are switched
on by ``ORDERS_ANOMALY_RULES`` and tuned by ``ORDERS_STALE_SCAN_HOURS`` and
``ORDERS_LATE_GRACE_DAYS`` (README, "Orders and logistics").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from django.conf import settings

from apps.orders.carriers import IN_TRANSIT_STATUSES, Tracking, TrackingStatus
from apps.orders.models import Shipment


class AnomalyCode(StrEnum):
    STALE_IN_TRANSIT = "stale_in_transit"
    EXCEPTION = "exception"
    LOST = "lost"
    PAST_PROMISED_DATE = "past_promised_date"
    RETURNED_TO_SENDER = "returned_to_sender"


@dataclass(frozen=True)
class Anomaly:
    code: AnomalyCode
    # For staff and logs, in English; the customer-facing wording belongs to the reply.
    detail: str
    # When the condition started: the last scan, the exception scan, the promised date.
    since: datetime | date | None = None


@dataclass(frozen=True)
class AnomalyRules:
    enabled: frozenset[AnomalyCode]
    stale_scan_hours: float
    late_grace_days: int
    time_zone: str

    @classmethod
    def from_settings(cls) -> AnomalyRules:
        return cls(
            enabled=frozenset(AnomalyCode(code) for code in settings.ORDERS_ANOMALY_RULES),
            stale_scan_hours=settings.ORDERS_STALE_SCAN_HOURS,
            late_grace_days=settings.ORDERS_LATE_GRACE_DAYS,
            time_zone=settings.TIME_ZONE,
        )


# A parcel that is lost or back with the shop gets that anomaly, not also "late".
_FINISHED = frozenset({TrackingStatus.DELIVERED, TrackingStatus.LOST, TrackingStatus.RETURNED_TO_SENDER})


def shipment_anomalies(
    tracking: Tracking, shipment: Shipment, now: datetime, rules: AnomalyRules | None = None
) -> list[Anomaly]:
    """The anomalies of one shipment, in a fixed order; [] for a healthy one."""
    rules = rules or AnomalyRules.from_settings()
    found: list[Anomaly] = []
    latest = tracking.latest_event
    last_scan_at = latest.time if latest else shipment.last_scan_at

    if tracking.status in IN_TRANSIT_STATUSES and last_scan_at is not None:
        silent = now - last_scan_at
        if silent > timedelta(hours=rules.stale_scan_hours):
            found.append(
                Anomaly(
                    AnomalyCode.STALE_IN_TRANSIT,
                    f"no new scan for {silent.total_seconds() / 3600:.0f} hours while {tracking.status}",
                    last_scan_at,
                )
            )
    if tracking.status == TrackingStatus.EXCEPTION:
        found.append(
            Anomaly(
                AnomalyCode.EXCEPTION, _with_scan("the carrier reports an exception", tracking), last_scan_at
            )
        )
    if tracking.status == TrackingStatus.LOST:
        found.append(
            Anomaly(
                AnomalyCode.LOST, _with_scan("the carrier reports the parcel lost", tracking), last_scan_at
            )
        )
    promised = shipment.promised_delivery_date
    if promised is not None and tracking.status not in _FINISHED:
        today = now.astimezone(ZoneInfo(rules.time_zone)).date()
        if today > promised + timedelta(days=rules.late_grace_days):
            days = (today - promised).days
            found.append(
                Anomaly(
                    AnomalyCode.PAST_PROMISED_DATE,
                    f"promised for {promised.isoformat()}, {days} day(s) ago, not delivered",
                    promised,
                )
            )
    if tracking.status == TrackingStatus.RETURNED_TO_SENDER:
        found.append(
            Anomaly(
                AnomalyCode.RETURNED_TO_SENDER,
                _with_scan("the parcel is going back to the shop", tracking),
                last_scan_at,
            )
        )
    return [anomaly for anomaly in found if anomaly.code in rules.enabled]


def _with_scan(text: str, tracking: Tracking) -> str:
    latest = tracking.latest_event
    if latest is None:
        return text
    return f"{text}: {latest.description} ({latest.place}, {latest.time.isoformat()})"
