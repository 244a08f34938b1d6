"""One assistant turn against the real model worker, retrieval and database."""

from __future__ import annotations

import asyncio
import re

import pytest

from apps.conversations.models import Conversation, Message
from apps.conversations.services import assistant_turn, conversation_start
from inference.client import ClientConfig, OpenAICompatibleModel
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _turn(conversation: Conversation, text: str, base_url: str) -> tuple[list[dict], dict]:
    async def run() -> list[dict]:
        model = OpenAICompatibleModel(
            ClientConfig(base_url=base_url, model="shopdesk-chat", connect_retries=0)
        )
        try:
            return [
                event
                async for event in assistant_turn(
                    conversation_id=conversation.pk, text=text, chat_model=model
                )
            ]
        finally:
            await model.close()

    events = asyncio.run(run())
    return events, events[-1]


@pytest.fixture
def shop(celery_worker):
    kb = make_kb()
    wait_final(*(upload(kb, name, data).document for name, data in FORMAT_DOCUMENTS.items()))
    return kb


def test_answers_stream_and_are_stored_with_citations(shop, model_worker) -> None:
    conversation = conversation_start(knowledge_base=shop).conversation
    events, final = _turn(conversation, "What time does the showroom close?", model_worker)
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    assert len(deltas) > 1
    assert final["type"] == "message" and final["outcome"] == "answered"
    assert final["text"] == "".join(deltas).strip()
    stored = list(Message.objects.filter(conversation=conversation).order_by("pk"))
    assert [m.role for m in stored] == ["customer", "assistant"]
    assert stored[1].completion_tokens > 0 and stored[1].first_token_ms is not None
    for citation in final["citations"]:
        assert citation["document"] in FORMAT_DOCUMENTS


def test_chinese_question_gets_a_chinese_answer(shop, model_worker) -> None:
    conversation = conversation_start(knowledge_base=shop).conversation
    _, final = _turn(conversation, "积分可以换成现金吗？", model_worker)
    assert final["outcome"] == "answered"
    assert re.search(r"[\u4e00-\u9fff]", final["text"])


def test_off_topic_question_gets_an_honest_answer_and_a_person(shop, model_worker) -> None:
    conversation = conversation_start(knowledge_base=shop).conversation
    _, final = _turn(conversation, "Who won the football world cup in 1954?", model_worker)
    assert final["outcome"] == "low_confidence"
    assert "couldn't find" in final["text"]
    assert final["conversation_status"] == "waiting_for_agent"
    # Once a person is on the way, the bot stays silent.
    events, last = _turn(conversation, "Hello?", model_worker)
    assert last == {"type": "queued", "status": "waiting_for_agent"}
    assert Message.objects.filter(conversation=conversation, role="assistant").count() == 1


def test_asking_for_a_person_hands_over(shop, model_worker) -> None:
    conversation = conversation_start(knowledge_base=shop).conversation
    _, final = _turn(conversation, "我要转人工", model_worker)
    assert final["outcome"] == "asked_for_person" and "人工客服" in final["text"]
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING_FOR_AGENT


def test_model_worker_down_gives_a_friendly_message(shop) -> None:
    conversation = conversation_start(knowledge_base=shop).conversation
    _, final = _turn(conversation, "What time does the showroom close?", "http://127.0.0.1:9/v1")
    assert final["outcome"] == "model_unavailable"
    assert "connect you with a member of our team" in final["text"]
