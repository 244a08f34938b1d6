"""The tool flow with the real model worker (cpu-dev, the 0.5B model) in the loop."""

from __future__ import annotations

import pytest

from apps.tickets.models import Ticket
from apps.tools.flow import TOOL_CHOICE_INSTRUCTION, TOOL_CHOICE_SCHEMA, TOOL_CHOICE_TOOLS
from apps.tools.models import ToolCall
from inference.client import ClientConfig, OpenAICompatibleModel
from tests.tools.conftest import LI_WEI, run_async, start, turn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _model(base_url: str) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(ClientConfig(base_url=base_url, model="shopdesk-chat", connect_retries=0))


def test_the_small_model_answers_the_tool_choice_within_the_schema(model_worker) -> None:
    """The prompt is tiny and the output constrained: the 0.5B model's choice is always a valid tool
    name (which one it picks for an unclear message is its business; a wrong pick costs an answer,
    never data, since the tool checks ownership)."""

    async def choices() -> list[str]:
        model = _model(model_worker)
        try:
            picked = []
            for question in ["DS20240501", "Can I still change my order?", "我的订单 DS20240508 呢"]:
                decision = await model.decide(
                    [
                        {"role": "system", "content": TOOL_CHOICE_INSTRUCTION},
                        {"role": "user", "content": question},
                    ],
                    schema=TOOL_CHOICE_SCHEMA,
                    name="tool_choice",
                    max_tokens=24,
                )
                picked.append(decision["tool"])
            return picked
        finally:
            await model.close()

    assert all(tool in TOOL_CHOICE_TOOLS for tool in run_async(choices()))


def test_the_seed_flow_with_the_model_worker_in_the_loop(shop, model_worker) -> None:
    reply = turn(
        start(shop, customer_id=LI_WEI),
        "My order DS20240501 shows shipped, but tracking hasn't updated for 3 days.",
        model_url=model_worker,
    )
    ticket = Ticket.objects.get()
    assert reply["outcome"] == "order_status" and ticket.number in reply["text"]

    # An unclear message goes through the model's choice and ends in a valid answer either way.
    unclear = turn(start(shop, customer_id=LI_WEI), "DS20240501", model_url=model_worker)
    assert unclear["type"] == "message"
    assert unclear["outcome"] in {"order_status", "asked_for_person", "low_confidence", "answered"}
    assert Ticket.objects.count() == 1
    assert not ToolCall.objects.filter(status=ToolCall.Status.FAILED).exists()
