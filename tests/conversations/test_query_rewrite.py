"""The standalone-query rewrite before retrieval, against the real model worker and search."""

from __future__ import annotations

import time
import urllib.request

import pytest

from apps.conversations.services import Answer, Prompt, assistant_answer, assistant_prompt
from apps.knowledge.selectors import kb_search
from inference.client import ClientConfig, OpenAICompatibleModel
from tests.conversations.helpers import run_async
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HISTORY = [
    ("user", "What time does the showroom close?"),
    ("assistant", "Our showroom in Hangzhou is open from 10 am to 8 pm every day [1]."),
]


def _model_requests(base_url: str) -> float:
    """Requests the model worker has finished, from vLLM's own Prometheus counters."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total{")
    )


def _model(base_url: str) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(ClientConfig(base_url=base_url, model="shopdesk-chat", connect_retries=0))


@pytest.fixture
def shop(celery_worker):
    kb = make_kb()
    wait_final(*(upload(kb, name, data).document for name, data in FORMAT_DOCUMENTS.items()))
    return kb


def test_with_history_retrieval_searches_the_standalone_rewrite(shop, model_worker) -> None:
    question = "Is parking free there?"

    async def run() -> tuple[Prompt | Answer, float]:
        model = _model(model_worker)
        try:
            started = time.monotonic()
            prompt = await assistant_prompt(
                knowledge_base=shop, history=HISTORY, question=question, chat_model=model
            )
            return prompt, time.monotonic() - started
        finally:
            await model.close()

    before = _model_requests(model_worker)
    prompt, seconds = run_async(run())
    assert _model_requests(model_worker) == before + 1  # the rewrite, and nothing else
    assert isinstance(prompt, Prompt)
    print(f"rewrite: {question!r} -> {prompt.search_query!r} in {seconds:.2f} s (with retrieval)")
    assert prompt.search_query and prompt.search_query != question
    assert "showroom" in prompt.search_query.lower() or "hangzhou" in prompt.search_query.lower()
    # The passages are exactly what searching the rewrite finds, and the answer's prompt
    # still carries the customer's own words.
    searched = kb_search(knowledge_base=shop, query=prompt.search_query, k=len(prompt.passages))
    assert [p.chunk_id for p in prompt.passages] == [hit.chunk_id for hit in searched]
    assert prompt.passages[0].document == "showroom.md"
    assert prompt.messages[-1] == {"role": "user", "content": question}


def test_without_history_there_is_no_extra_model_call(shop, model_worker) -> None:
    async def run() -> list:
        model = _model(model_worker)
        try:
            return [
                event
                async for event in assistant_answer(
                    knowledge_base=shop,
                    history=[],
                    question="What time does the showroom close?",
                    chat_model=model,
                )
            ]
        finally:
            await model.close()

    before = _model_requests(model_worker)
    events = run_async(run())
    final = events[-1]
    assert isinstance(final, Answer) and final.outcome == "answered"
    assert _model_requests(model_worker) == before + 1  # the answer only


def test_a_model_error_falls_back_to_the_message_as_sent(shop) -> None:
    async def run() -> Prompt | Answer:
        model = _model("http://127.0.0.1:9/v1")
        try:
            return await assistant_prompt(
                knowledge_base=shop,
                history=HISTORY,
                question="What time does the showroom close?",
                chat_model=model,
            )
        finally:
            await model.close()

    prompt = run_async(run())
    assert isinstance(prompt, Prompt)
    assert prompt.search_query == "What time does the showroom close?"
    assert prompt.passages[0].document == "showroom.md"
