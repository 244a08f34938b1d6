"""Tool steps against the real Celery worker (whose carrier is the sandbox carrier process) and the
real database. The chat turns here need no model: the order flow is deterministic and templated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from apps.conversations.models import Conversation
from apps.conversations.services import assistant_turn, conversation_start
from apps.knowledge.models import KnowledgeBase
from apps.orders.demo import demo_orders_load
from apps.orders.models import Customer, Order, Shipment
from inference.client import ClientConfig, LLMUnavailable, OpenAICompatibleModel
from tests.conftest import SandboxCarrier
from tests.conversations.helpers import run_async
from tests.knowledge.helpers import make_kb

# No model worker listens here: a turn that reaches the model fails fast (and says so).
NO_MODEL = "http://127.0.0.1:9/v1"

# The demo customers (apps/orders/demo_data/orders.json).
LI_WEI = "lumen-c-10001"  # owns DS20240501 (the seed) and DS20240510
EMMA = "lumen-c-10002"  # owns DS20240502 and DS20240503
# Everything about Emma's order DS20240503 that must never reach anyone else.
EMMA_DATA = (
    "Emma", "Clarke", "emma.clarke@example.co.uk", "7700", "900123", "5930418276", "Manchester",
    "Heathrow", "East Midlands", "address incomplete", "rug", "DHL", "219",
)  # fmt: skip


@pytest.fixture
def tools_env(celery_worker, sandbox_carrier: SandboxCarrier, settings) -> SandboxCarrier:
    """The worker is up, the sandbox's "fail first N" counters are reset, turns wait long enough."""
    settings.TOOLS_WAIT_SECONDS = 15.0
    httpx.post(
        f"{sandbox_carrier.base_url}/_sandbox/reset", headers={"X-API-Key": sandbox_carrier.api_key}
    ).raise_for_status()
    return sandbox_carrier


@pytest.fixture
def shop(tools_env) -> KnowledgeBase:
    demo_orders_load()
    return make_kb()


def start(kb: KnowledgeBase, *, customer_id: str = "", language: str = "en") -> Conversation:
    return conversation_start(
        knowledge_base=kb, language=language, verified_customer_id=customer_id
    ).conversation


def turn(
    conversation: Conversation, text: str, chat_model: Any = None, *, model_url: str = NO_MODEL
) -> dict[str, Any]:
    """One widget turn; returns the last event (the stored reply, or "queued"). Without ``chat_model``,
    a client of the model worker at ``model_url`` (none by default), opened and closed in the turn."""

    async def run() -> list[dict[str, Any]]:
        model = chat_model or OpenAICompatibleModel(
            ClientConfig(base_url=model_url, model="shopdesk-chat", connect_retries=0)
        )
        try:
            return [
                e async for e in assistant_turn(conversation_id=conversation.pk, text=text, chat_model=model)
            ]
        finally:
            if chat_model is None:
                await model.close()

    return run_async(run())[-1]


def sandbox_order(number: str, tracking_number: str, *, customer_id: str = "test-c-1") -> Order:
    """An order of a test customer whose parcel has one of the sandbox's scripted behaviours."""
    customer, _ = Customer.objects.get_or_create(
        external_id=customer_id, defaults={"name": "Test Customer", "email": f"{customer_id}@example.com"}
    )
    order = Order.objects.create(
        number=number,
        customer=customer,
        contact_email=customer.email,
        total=10,
        currency="USD",
        status=Order.Status.SHIPPED,
        placed_at=timezone.now() - timedelta(days=2),
    )
    Shipment.objects.create(order=order, carrier_code="sandbox", tracking_number=tracking_number)
    return order


class ScriptedModel:
    """Stands in for the model worker where a test needs a particular decision: ``decide`` returns
    (or raises) what it was given; answering fails like an unreachable worker."""

    def __init__(self, decision: Any) -> None:
        self.decision = decision
        self.decisions = 0

    async def decide(
        self, messages: Sequence[dict], *, schema: dict, name: str, max_tokens: int = 256
    ) -> Any:
        self.decisions += 1
        if isinstance(self.decision, Exception):
            raise self.decision
        return self.decision

    async def complete(self, messages: Sequence[dict], **sampling: Any) -> Any:
        raise LLMUnavailable("no model in this test")

    async def stream(self, messages: Sequence[dict], **sampling: Any) -> AsyncIterator[Any]:
        raise LLMUnavailable("no model in this test")
        yield  # an async generator, like the real client's
