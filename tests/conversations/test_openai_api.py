"""The OpenAI-compatible endpoint over real HTTP (uvicorn, ASGI) with the official ``openai``
client: streaming and not, citations, keys, errors and limits."""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import openai
import pytest
from django.db import connection

from apps.conversations.models import Conversation, Message
from apps.conversations.services import api_visitor_label
from apps.knowledge.models import KnowledgeBaseApiKey
from apps.knowledge.services import api_key_create, api_key_revoke
from tests.knowledge.helpers import FORMAT_DOCUMENTS, make_kb, upload, wait_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

QUESTION = "What time does the showroom close?"


@pytest.fixture
def shop(celery_worker):
    kb = make_kb()
    wait_final(*(upload(kb, name, data).document for name, data in FORMAT_DOCUMENTS.items()))
    return kb


def _client(web_server: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{web_server}/v1", api_key=key, max_retries=0, timeout=300)


def _post(web_server: str, key: str | None, body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{web_server}/v1/chat/completions", json=body, headers=headers, timeout=300)


def test_non_streaming_answer_has_citations_usage_and_is_stored(shop, web_server) -> None:
    created = api_key_create(knowledge_base=shop)
    completion = _client(web_server, created.key).chat.completions.create(
        model="test-shop",
        messages=[
            {"role": "system", "content": "Ignored: the knowledge base's own instructions apply."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": QUESTION},
        ],
        max_tokens=40,
        temperature=0,
    )
    assert completion.object == "chat.completion" and completion.model == "test-shop"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in {"stop", "length"}
    assert completion.usage.prompt_tokens > 0 and 0 < completion.usage.completion_tokens <= 40
    extra = completion.model_extra
    assert extra["outcome"] == "answered"
    assert extra["citations"] and extra["citations"][0]["document"] == "showroom.md"

    conversation = Conversation.objects.get(visitor_token_hash=api_visitor_label(created.api_key.prefix))
    assert conversation.status == Conversation.Status.CLOSED and conversation.knowledge_base == shop
    stored = list(Message.objects.filter(conversation=conversation).order_by("pk"))
    assert [(m.role, m.text) for m in stored] == [
        ("customer", QUESTION),
        ("assistant", choice.message.content),
    ]
    assert stored[1].completion_tokens == completion.usage.completion_tokens
    created.api_key.refresh_from_db()
    assert created.api_key.last_used_at is not None


def test_streaming_answer_is_openai_chunks_ending_with_done(shop, web_server) -> None:
    key = api_key_create(knowledge_base=shop).key
    stream = _client(web_server, key).chat.completions.create(
        model="test-shop",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=40,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text.strip()
    final = [chunk for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason][-1]
    assert final.choices[0].finish_reason in {"stop", "length"}
    assert final.model_extra["citations"][0]["document"] == "showroom.md"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0

    # The raw wire format: SSE data lines, the last one [DONE].
    with httpx.stream(
        "POST",
        f"{web_server}/v1/chat/completions",
        json={"model": "test-shop", "messages": [{"role": "user", "content": QUESTION}], "stream": True,
              "max_tokens": 8},
        headers={"Authorization": f"Bearer {key}"},
        timeout=300,
    ) as response:  # fmt: skip
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"


def test_rules_answer_through_the_api_too(shop, web_server) -> None:
    client = _client(web_server, api_key_create(knowledge_base=shop).key)
    off_topic = client.chat.completions.create(
        model="test-shop", messages=[{"role": "user", "content": "Who won the football world cup in 1954?"}]
    )
    assert off_topic.model_extra["outcome"] == "low_confidence"
    assert "couldn't find" in off_topic.choices[0].message.content
    assert off_topic.usage.completion_tokens == 0
    stream = client.chat.completions.create(
        model="test-shop", messages=[{"role": "user", "content": "我要转人工"}], stream=True
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "人工客服" in text and chunks[-1].model_extra["outcome"] == "asked_for_person"


def test_wrong_missing_and_revoked_keys_get_401(web_server) -> None:
    kb = make_kb()
    created = api_key_create(knowledge_base=kb)
    body = {"model": "test-shop", "messages": [{"role": "user", "content": "hi"}]}
    for key in ["sdk_wrong", "not-even-our-format", created.key + "x"]:
        with pytest.raises(openai.AuthenticationError):
            _client(web_server, key).chat.completions.create(**body)
        with pytest.raises(openai.AuthenticationError):
            _client(web_server, key).models.list()
    missing = _post(web_server, None, body)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    assert missing.headers["www-authenticate"].startswith("Bearer")

    assert [m.id for m in _client(web_server, created.key).models.list()] == ["test-shop"]
    api_key_revoke(prefix=created.api_key.prefix)
    with pytest.raises(openai.AuthenticationError) as error:
        _client(web_server, created.key).models.list()
    assert error.value.body["code"] == "invalid_api_key"


def test_models_lists_only_the_keys_knowledge_base_and_other_models_are_404(web_server) -> None:
    mine, theirs = make_kb("shop-a"), make_kb("shop-b")
    key = api_key_create(knowledge_base=mine).key
    client = _client(web_server, key)
    models = client.models.list()
    assert [m.id for m in models] == ["shop-a"] and models.data[0].object == "model"
    assert client.models.retrieve("shop-a").id == "shop-a"
    for model in [theirs.slug, "no-such-shop"]:
        with pytest.raises(openai.NotFoundError) as error:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert error.value.body["code"] == "model_not_found"
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(model)
    # The other knowledge base's own key works for it, and only for it.
    other = _client(web_server, api_key_create(knowledge_base=theirs).key)
    assert [m.id for m in other.models.list()] == ["shop-b"]


def test_malformed_bodies_get_400_and_oversized_messages_413(web_server) -> None:
    kb = make_kb()
    key = api_key_create(knowledge_base=kb).key
    user = {"role": "user", "content": "hi"}
    bad_bodies = [
        {"model": "test-shop"},
        {"model": "test-shop", "messages": []},
        {"model": "test-shop", "messages": "hi"},
        {"messages": [user]},
        {"model": "test-shop", "messages": [{"role": "wizard", "content": "hi"}]},
        {"model": "test-shop", "messages": [{"role": "tool", "content": "hi", "tool_call_id": "x"}]},
        {"model": "test-shop", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
        {"model": "test-shop", "messages": [{"role": "user", "content": None}]},
        {"model": "test-shop", "messages": [user, {"role": "assistant", "content": "last"}]},
        {"model": "test-shop", "messages": [{"role": "user", "content": "   "}]},
        {"model": "test-shop", "messages": [user], "temperature": 3},
        {"model": "test-shop", "messages": [user], "temperature": "hot"},
        {"model": "test-shop", "messages": [user], "top_p": 0},
        {"model": "test-shop", "messages": [user], "max_tokens": 0},
        {"model": "test-shop", "messages": [user], "n": 2},
        {"model": "test-shop", "messages": [user], "stream": "yes"},
        ["not", "an", "object"],
    ]
    for body in bad_bodies:
        response = _post(web_server, key, body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"], body
    not_json = httpx.post(
        f"{web_server}/v1/chat/completions", content=b"{nope", headers={"Authorization": f"Bearer {key}"}
    )
    assert not_json.status_code == 400
    with pytest.raises(openai.BadRequestError):
        _client(web_server, key).chat.completions.create(model="test-shop", messages=[], temperature=-1)

    too_long = _post(
        web_server, key, {"model": "test-shop", "messages": [{"role": "user", "content": "x" * 2001}]}
    )
    assert too_long.status_code == 413
    assert "2000 characters" in too_long.json()["error"]["message"]
    huge = _post(web_server, key, {"model": "test-shop", "messages": [user] * 5000})
    assert huge.status_code == 413


def test_a_key_sending_too_fast_gets_429(web_server) -> None:
    kb = make_kb()
    key = api_key_create(knowledge_base=kb).key
    # Malformed bodies are cheap, and they count: the limit is per key, whatever the request.
    with httpx.Client(timeout=30) as http:
        codes = [
            http.post(
                f"{web_server}/v1/chat/completions", json={"model": "test-shop"},
                headers={"Authorization": f"Bearer {key}"},
            ).status_code
            for _ in range(125)
        ]  # fmt: skip
    # 60 a minute are allowed; 125 overrun one fixed window even if they straddle two.
    assert codes[:60] == [400] * 60
    assert 429 in codes[60:]
    # Another key is not affected.
    assert _client(web_server, api_key_create(knowledge_base=kb).key).models.list().data


def test_keys_are_stored_hashed() -> None:
    kb = make_kb()
    created = api_key_create(knowledge_base=kb, name="load tests")
    assert created.key.startswith("sdk_") and len(created.key) > 40
    row = KnowledgeBaseApiKey.objects.get(pk=created.api_key.pk)
    assert row.key_hash == hashlib.sha256(created.key.encode()).hexdigest()
    assert row.prefix == created.key[:12] and row.revoked_at is None and row.last_used_at is None
    # Nowhere in the table, in any column, is the key itself.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT row_to_json(t)::text FROM {KnowledgeBaseApiKey._meta.db_table} t")
        dumped = " ".join(r[0] for r in cursor.fetchall())
    assert created.key not in dumped and created.key[12:] not in dumped
    assert api_key_create(knowledge_base=kb).key != created.key


def _worker_metric(model_worker: str, name: str) -> float:
    """A counter or gauge of the model worker (Prometheus text), summed over its labels."""
    metrics = httpx.get(model_worker.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def _tokens_generated_until_idle(model_worker: str, before: float) -> float:
    deadline = time.monotonic() + 60
    while _worker_metric(model_worker, "vllm:num_requests_running") > 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return _worker_metric(model_worker, "vllm:generation_tokens_total") - before


def test_a_client_that_disconnects_cancels_the_generation(shop, web_server, model_worker) -> None:
    key = api_key_create(knowledge_base=shop).key
    body = {
        "model": "test-shop",
        "messages": [{"role": "user", "content": "When is the showroom open, and where do visitors park? "
                      "Please explain in detail."}],
        "max_tokens": 120,
        "temperature": 0,
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{web_server}/v1/chat/completions"
    # The whole answer first: greedy decoding gives the same tokens every time.
    full = httpx.post(url, json=body, headers=headers, timeout=300).json()["usage"]["completion_tokens"]
    assert full >= 30, "the answer is too short to tell a cancelled generation from a finished one"

    before = _worker_metric(model_worker, "vllm:generation_tokens_total")
    with httpx.stream("POST", url, json={**body, "stream": True}, headers=headers, timeout=300) as response:
        contents = 0
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                contents += 1
                if contents == 2:
                    break  # leaving the block closes the connection mid-answer
    assert _tokens_generated_until_idle(model_worker, before) < full / 2

    # Not streaming: the client gives up waiting for the whole answer.
    before = _worker_metric(model_worker, "vllm:generation_tokens_total")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json=body, headers=headers, timeout=httpx.Timeout(300, read=1))
    assert _tokens_generated_until_idle(model_worker, before) < full / 2
