"""The sandbox carrier process on bad input, spoken to over raw HTTP (paths sent exactly as written)."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from apps.orders.demo import demo_data
from tests.conftest import SandboxCarrier


def _get(carrier: SandboxCarrier, path: str, key: str | None) -> tuple[int, dict]:
    url = urlsplit(carrier.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.request("GET", path, headers={"X-API-Key": key} if key is not None else {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_health_needs_no_key(sandbox_carrier: SandboxCarrier) -> None:
    assert _get(sandbox_carrier, "/healthz", None) == (200, {"status": "ok"})


def test_every_demo_tracking_number_is_known(sandbox_carrier: SandboxCarrier) -> None:
    data = demo_data()
    numbers = [s["tracking_number"] for order in data["orders"] for s in order["shipments"]]
    assert len(numbers) == 9
    for number in numbers:
        status, body = _get(sandbox_carrier, f"/v1/tracking/{number}", sandbox_carrier.api_key)
        assert status == 200, number
        assert body["tracking_number"] == number
        assert body["events"], number


def test_scan_times_are_relative_to_now(sandbox_carrier: SandboxCarrier) -> None:
    status, body = _get(sandbox_carrier, "/v1/tracking/75318204961122", sandbox_carrier.api_key)
    assert status == 200
    latest = datetime.fromisoformat(body["events"][0]["time"])  # newest first
    assert abs((datetime.now(UTC) - latest) - timedelta(hours=122)) < timedelta(minutes=1)


@pytest.mark.parametrize("key", [None, "", "sandbox-key", "test-carrier-key "])
def test_a_missing_or_wrong_key_is_401_even_for_unknown_numbers(sandbox_carrier: SandboxCarrier, key) -> None:
    for path in ("/v1/tracking/SF1402938475610", "/v1/tracking/SF0000000000000", "/v1/tracking/../x"):
        status, body = _get(sandbox_carrier, path, key)
        assert status == 401, path
        assert body["error"]["code"] == "unauthorized"
        assert "events" not in body


def test_unknown_tracking_number_is_404(sandbox_carrier: SandboxCarrier) -> None:
    status, body = _get(sandbox_carrier, "/v1/tracking/SF0000000000000", sandbox_carrier.api_key)
    assert (status, body["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tracking/../../etc/passwd",
        "/v1/tracking/..%2F..%2Fetc%2Fpasswd",
        "/v1/tracking/%2e%2e%2f%2e%2e%2fdemo_data%2forders.json",
        "/v1/tracking/SF1402938475610%00",
        "/v1/tracking/SF1402938475610/../SBX-SLOW-0001",
        "/v1/tracking/%E9%A1%BA%E4%B8%B01234567",
        "/v1/tracking/" + "9" * 500,
        "/v1/tracking/",
    ],
)
def test_path_tricks_are_400(sandbox_carrier: SandboxCarrier, path: str) -> None:
    status, body = _get(sandbox_carrier, path, sandbox_carrier.api_key)
    assert (status, body["error"]["code"]) == (400, "invalid_tracking_number")


def test_other_paths_are_404(sandbox_carrier: SandboxCarrier) -> None:
    for path in ("/", "/v1/tracking", "/v2/tracking/SF1402938475610", "/etc/passwd"):
        status, _ = _get(sandbox_carrier, path, sandbox_carrier.api_key)
        assert status == 404, path


def test_the_key_never_appears_in_its_log(sandbox_carrier: SandboxCarrier) -> None:
    _get(sandbox_carrier, "/v1/tracking/SF1402938475610", sandbox_carrier.api_key)
    assert sandbox_carrier.api_key not in sandbox_carrier.process.log()
