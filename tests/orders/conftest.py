from __future__ import annotations

import httpx
import pytest

from apps.orders.demo import demo_orders_load
from tests.conftest import SandboxCarrier


@pytest.fixture
def carrier(sandbox_carrier: SandboxCarrier, settings) -> SandboxCarrier:
    """Settings pointing the carrier adapter at the sandbox process, its scripted
    "fail first N calls" counters reset."""
    settings.CARRIER_API_BASE_URL = sandbox_carrier.base_url
    settings.CARRIER_API_KEY = sandbox_carrier.api_key
    settings.CARRIER_TIMEOUT_SECONDS = 2.0
    settings.CARRIER_MAX_RETRIES = 2
    settings.CARRIER_RETRY_BACKOFF_SECONDS = 0.05
    response = httpx.post(
        f"{sandbox_carrier.base_url}/_sandbox/reset", headers={"X-API-Key": sandbox_carrier.api_key}
    )
    response.raise_for_status()
    return sandbox_carrier


@pytest.fixture
def demo_orders(db) -> None:
    demo_orders_load()
