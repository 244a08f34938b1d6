"""The carrier tracking API behind a small adapter with a real HTTP client.

``GET {CARRIER_API_BASE_URL}/v1/tracking/{tracking_number}?carrier={code}`` with the
key in ``X-API-Key`` answers JSON::

    {"tracking_number": "SF1402938475610", "carrier": "sf-express", "status": "in_transit",
     "events": [{"time": "2026-05-03T08:12:00+08:00", "place": "Shanghai hub",
                 "status": "in_transit", "description": "Departed facility"}, ...]}

Connection errors, timeouts and 5xx answers are retried with exponential backoff
and jitter (``CARRIER_MAX_RETRIES``); everything else fails at once. Callers see
typed errors only, never an httpx exception. In development and tests the carrier
is the sandbox (``apps.orders.sandbox_carrier``), a process of its own.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

# Carriers' tracking numbers are letters, digits and dashes; anything else never
# reaches the URL (no path tricks, no query injection).
TRACKING_NUMBER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{3,39}$")
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
BACKOFF_MAX_SECONDS = 5.0


class TrackingStatus(StrEnum):
    INFO_RECEIVED = "info_received"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    LOST = "lost"
    RETURNED_TO_SENDER = "returned_to_sender"
    UNKNOWN = "unknown"


IN_TRANSIT_STATUSES = frozenset(
    {TrackingStatus.INFO_RECEIVED, TrackingStatus.IN_TRANSIT, TrackingStatus.OUT_FOR_DELIVERY}
)


class CarrierError(Exception):
    """Base of every error the adapter raises."""


class CarrierUnavailable(CarrierError):
    """The carrier could not be reached or kept failing (connection errors, 5xx) after retries."""


class CarrierTimeout(CarrierUnavailable):
    """The carrier did not answer within ``CARRIER_TIMEOUT_SECONDS``, on every attempt."""


class CarrierAuthError(CarrierError):
    """The carrier refused our key (401/403): a configuration problem, not worth retrying."""


class TrackingNotFound(CarrierError):
    """The carrier does not know this tracking number."""


class InvalidTrackingNumber(CarrierError):
    """Not a tracking number at all; nothing was sent to the carrier."""


class CarrierResponseInvalid(CarrierError):
    """The carrier answered something we cannot read (not JSON, missing fields, bad times)."""


@dataclass(frozen=True)
class ScanEvent:
    time: datetime
    place: str
    status: TrackingStatus
    description: str


@dataclass(frozen=True)
class Tracking:
    tracking_number: str
    carrier_code: str
    status: TrackingStatus
    events: tuple[ScanEvent, ...]  # newest first

    @property
    def latest_event(self) -> ScanEvent | None:
        return self.events[0] if self.events else None


def tracking_parse(payload: Any) -> Tracking:
    """The carrier's JSON as a ``Tracking``; ``CarrierResponseInvalid`` when it is not what the API promises."""
    try:
        events = [
            ScanEvent(
                time=_aware_datetime(str(event["time"])),
                place=str(event.get("place") or ""),
                status=_status(event.get("status")),
                description=str(event.get("description") or ""),
            )
            for event in payload["events"]
        ]
        return Tracking(
            tracking_number=str(payload["tracking_number"]),
            carrier_code=str(payload.get("carrier") or ""),
            status=_status(payload["status"]),
            events=tuple(sorted(events, key=lambda event: event.time, reverse=True)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CarrierResponseInvalid(f"unreadable tracking response: {exc!r}") from exc


def _status(value: Any) -> TrackingStatus:
    try:
        return TrackingStatus(str(value))
    except ValueError:
        # A status we have not mapped yet is kept visible as "unknown" rather than failing the lookup.
        return TrackingStatus.UNKNOWN


def _aware_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"scan time without a time zone: {value!r}")
    return parsed


def backoff_seconds(*, attempt: int, base: float) -> float:
    """Exponential backoff with jitter: uniform(ceiling/2, ceiling), ceiling = base * 2**attempt."""
    ceiling = min(BACKOFF_MAX_SECONDS, base * (2**attempt))
    return random.uniform(ceiling / 2, ceiling)


@dataclass
class CarrierClient:
    base_url: str
    api_key: str
    timeout_seconds: float
    max_retries: int
    backoff_base_seconds: float

    @classmethod
    def from_settings(cls) -> CarrierClient:
        return cls(
            base_url=settings.CARRIER_API_BASE_URL,
            api_key=settings.CARRIER_API_KEY,
            timeout_seconds=settings.CARRIER_TIMEOUT_SECONDS,
            max_retries=settings.CARRIER_MAX_RETRIES,
            backoff_base_seconds=settings.CARRIER_RETRY_BACKOFF_SECONDS,
        )

    def track(self, *, tracking_number: str, carrier_code: str = "") -> Tracking:
        tracking_number = tracking_number.strip()
        if not TRACKING_NUMBER_RE.fullmatch(tracking_number):
            raise InvalidTrackingNumber("not a tracking number")
        url = f"{self.base_url.rstrip('/')}/v1/tracking/{quote(tracking_number, safe='')}"
        params = {"carrier": carrier_code} if carrier_code else {}
        with httpx.Client(
            timeout=httpx.Timeout(self.timeout_seconds),
            headers={"X-API-Key": self.api_key, "Accept": "application/json"},
        ) as client:
            response = self._get_with_retries(client, url, params)
        if response.status_code == 404:
            raise TrackingNotFound(f"the carrier does not know {tracking_number}")
        if response.status_code in (401, 403):
            raise CarrierAuthError(f"the carrier refused our API key (HTTP {response.status_code})")
        if response.status_code == 400:
            raise InvalidTrackingNumber("the carrier rejected the tracking number")
        if response.status_code != 200:
            raise CarrierUnavailable(f"the carrier answered HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise CarrierResponseInvalid("the carrier's answer is not JSON") from exc
        return tracking_parse(payload)

    def _get_with_retries(self, client: httpx.Client, url: str, params: dict[str, str]) -> httpx.Response:
        attempts = self.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            last = attempt == attempts
            try:
                response = client.get(url, params=params)
            except httpx.TimeoutException as exc:
                if last:
                    raise CarrierTimeout(
                        f"no answer within {self.timeout_seconds:g}s after {attempts} attempts"
                    ) from exc
                failure = f"timeout ({type(exc).__name__})"
            except httpx.TransportError as exc:
                if last:
                    raise CarrierUnavailable(
                        f"cannot reach the carrier after {attempts} attempts: {type(exc).__name__}"
                    ) from exc
                failure = f"connection error ({type(exc).__name__})"
            else:
                if response.status_code not in RETRYABLE_STATUS or last:
                    return response
                failure = f"HTTP {response.status_code}"
            delay = backoff_seconds(attempt=attempt - 1, base=self.backoff_base_seconds)
            logger.warning(
                "carrier request failed; retrying",
                extra={"failure": failure, "attempt": attempt, "retry_in_s": round(delay, 3)},
            )
            time.sleep(delay)


def carrier_client() -> CarrierClient:
    return CarrierClient.from_settings()
