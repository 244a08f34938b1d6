"""The carrier adapter against the real sandbox carrier process."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from apps.orders.carriers import (
    CarrierAuthError,
    CarrierClient,
    CarrierResponseInvalid,
    CarrierTimeout,
    CarrierUnavailable,
    InvalidTrackingNumber,
    TrackingNotFound,
    TrackingStatus,
    carrier_client,
    tracking_parse,
)
from stack.ports import free_port
from tests.conftest import SandboxCarrier


def _requests_for(carrier: SandboxCarrier, tracking_number: str) -> int:
    """Requests the sandbox logged for this number so far (one log line each)."""
    return carrier.process.log().count(f"/v1/tracking/{tracking_number}")


def test_tracking_with_scan_events_newest_first(carrier: SandboxCarrier) -> None:
    tracking = carrier_client().track(tracking_number="SF1402938475610", carrier_code="sf-express")

    assert tracking.status is TrackingStatus.IN_TRANSIT
    assert tracking.carrier_code == "sf-express"
    assert [event.place for event in tracking.events][:2] == ["上海浦东中转场", "深圳宝安集散中心"]
    latest = tracking.latest_event
    assert latest is not None and latest.description == "快件已到达【上海浦东中转场】"
    # Scripted relative to now: the seed's parcel is always 76 hours without a scan.
    silent = datetime.now(UTC) - latest.time
    assert timedelta(hours=75, minutes=59) < silent < timedelta(hours=76, minutes=1)
    assert latest.time.utcoffset() == timedelta(hours=8)
    assert all(a.time > b.time for a, b in zip(tracking.events, tracking.events[1:], strict=False))


def test_unknown_tracking_number_is_not_found(carrier: SandboxCarrier) -> None:
    with pytest.raises(TrackingNotFound):
        carrier_client().track(tracking_number="SF0000000000000")


def test_another_carriers_number_is_not_found(carrier: SandboxCarrier) -> None:
    with pytest.raises(TrackingNotFound):
        carrier_client().track(tracking_number="SF1402938475610", carrier_code="ups")


def test_bad_key_is_an_auth_error_and_not_retried(carrier: SandboxCarrier, settings) -> None:
    settings.CARRIER_API_KEY = "not-the-key"
    before = _requests_for(carrier, "SF1402938475610")
    with pytest.raises(CarrierAuthError):
        carrier_client().track(tracking_number="SF1402938475610")
    assert _requests_for(carrier, "SF1402938475610") == before + 1


def test_5xx_then_success_is_retried(carrier: SandboxCarrier) -> None:
    before = _requests_for(carrier, "SBX-FLAKY-0001")
    tracking = carrier_client().track(tracking_number="SBX-FLAKY-0001")
    assert tracking.status is TrackingStatus.IN_TRANSIT
    assert tracking.latest_event is not None
    assert tracking.latest_event.description == "Answered after two failures"
    assert _requests_for(carrier, "SBX-FLAKY-0001") == before + 3  # 503, 503, 200


def test_5xx_beyond_the_retries_is_unavailable(carrier: SandboxCarrier, settings) -> None:
    settings.CARRIER_MAX_RETRIES = 1
    before = _requests_for(carrier, "SBX-FLAKY-0001")
    with pytest.raises(CarrierUnavailable) as raised:
        carrier_client().track(tracking_number="SBX-FLAKY-0001")
    assert not isinstance(raised.value, CarrierTimeout)
    assert "503" in str(raised.value)
    assert _requests_for(carrier, "SBX-FLAKY-0001") == before + 2


@pytest.mark.parametrize("tracking_number", ["SBX-ERROR-500", "SBX-ERROR-503"])
def test_persistent_server_errors_are_unavailable_after_every_attempt(
    carrier: SandboxCarrier, tracking_number: str
) -> None:
    before = _requests_for(carrier, tracking_number)
    with pytest.raises(CarrierUnavailable):
        carrier_client().track(tracking_number=tracking_number)
    assert _requests_for(carrier, tracking_number) == before + 3


def test_slow_carrier_times_out_within_the_configured_timeout(carrier: SandboxCarrier, settings) -> None:
    settings.CARRIER_TIMEOUT_SECONDS = 0.5
    settings.CARRIER_MAX_RETRIES = 0
    started = time.monotonic()
    with pytest.raises(CarrierTimeout):
        carrier_client().track(tracking_number="SBX-SLOW-0001")
    assert time.monotonic() - started < 1.5  # the sandbox sleeps 5 s

    settings.CARRIER_MAX_RETRIES = 1
    started = time.monotonic()
    with pytest.raises(CarrierTimeout):
        carrier_client().track(tracking_number="SBX-SLOW-0001")
    # Two attempts of 0.5 s and at most one 0.1 s backoff.
    assert time.monotonic() - started < 2.5


def test_connection_refused_is_unavailable(settings) -> None:
    settings.CARRIER_API_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.CARRIER_MAX_RETRIES = 1
    settings.CARRIER_RETRY_BACKOFF_SECONDS = 0.01
    with pytest.raises(CarrierUnavailable) as raised:
        carrier_client().track(tracking_number="SF1402938475610")
    assert not isinstance(raised.value, CarrierTimeout)
    assert "ConnectError" in str(raised.value)


def test_an_answer_that_is_not_json_is_invalid(carrier: SandboxCarrier) -> None:
    with pytest.raises(CarrierResponseInvalid):
        carrier_client().track(tracking_number="SBX-GARBAGE-01")


@pytest.mark.parametrize(
    "tracking_number", ["../../etc/passwd", "SF14/../admin", "SF1402?x=1", "", "ab", "x" * 41, "顺丰1234567"]
)
def test_what_is_not_a_tracking_number_never_reaches_the_carrier(tracking_number: str) -> None:
    # Nothing listens at the test settings' base URL: a request would fail differently.
    client = CarrierClient(
        base_url="http://127.0.0.1:9", api_key="k", timeout_seconds=1, max_retries=0, backoff_base_seconds=0
    )
    with pytest.raises(InvalidTrackingNumber):
        client.track(tracking_number=tracking_number)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"tracking_number": "X1234", "status": "in_transit"},
        {"tracking_number": "X1234", "status": "in_transit", "events": [{"place": "no time"}]},
        {"tracking_number": "X1234", "status": "in_transit", "events": [{"time": "2026-05-01T10:00:00"}]},
        {"tracking_number": "X1234", "status": "in_transit", "events": "not a list"},
        ["not", "an", "object"],
    ],
)
def test_malformed_payloads_are_invalid(payload: object) -> None:
    with pytest.raises(CarrierResponseInvalid):
        tracking_parse(payload)


def test_an_unmapped_status_is_kept_as_unknown() -> None:
    tracking = tracking_parse(
        {
            "tracking_number": "X1234",
            "status": "held_by_customs",
            "events": [
                {"time": "2026-05-01T10:00:00+08:00", "status": "weird", "place": "", "description": ""}
            ],
        }
    )
    assert tracking.status is TrackingStatus.UNKNOWN
    assert tracking.events[0].status is TrackingStatus.UNKNOWN
