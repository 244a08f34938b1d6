"""The model worker (cpu-dev, the real vLLM on the CPU) through the official
``openai`` client and through our own client."""

from __future__ import annotations

import asyncio
import re

import openai
import pytest

from inference.client import (
    CircuitBreaker,
    ClientConfig,
    LLMInvalidOutput,
    LLMRequestError,
    LLMTimeout,
    LLMUnavailable,
    OpenAICompatibleModel,
    StreamEnd,
    TextDelta,
    probe,
)
from tests.inference.helpers import collect_stream

pytestmark = pytest.mark.slow

CJK = re.compile(r"[\u4e00-\u9fff]")


def _model(base_url: str, **overrides) -> OpenAICompatibleModel:
    return OpenAICompatibleModel(ClientConfig(base_url=base_url, model="shopdesk-chat", **overrides))


def test_official_openai_client_streams_a_chat_completion(model_worker: str) -> None:
    client = openai.OpenAI(base_url=model_worker, api_key="unused")
    stream = client.chat.completions.create(
        model="shopdesk-chat",
        messages=[{"role": "user", "content": "Count from 1 to 5, separated by commas."}],
        max_tokens=20,
        temperature=0,
        stream=True,
    )
    deltas = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len([d for d in deltas if d]) > 1, "the answer arrived in several pieces"
    assert "1" in "".join(deltas) and "3" in "".join(deltas)


def test_eight_concurrent_streams_all_complete(model_worker: str) -> None:
    async def run() -> list[tuple[str, StreamEnd]]:
        model = _model(model_worker)
        try:
            prompts = [f"Write one short sentence about parcel number {n}." for n in range(8)]
            return await asyncio.gather(
                *(
                    collect_stream(model, [{"role": "user", "content": p}], max_tokens=24, temperature=0)
                    for p in prompts
                )
            )
        finally:
            await model.close()

    results = asyncio.run(run())
    assert len(results) == 8
    for text, end in results:
        assert text.strip()
        assert end.usage.completion_tokens > 0 and end.usage.prompt_tokens > 0
        assert end.finish_reason in {"stop", "length"}
        assert end.first_token_s is not None and end.first_token_s <= end.latency_s


def test_decide_returns_a_value_that_matches_the_schema(model_worker: str) -> None:
    schema = {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": ["track_order", "return_item", "talk_to_person", "other"]},
            "order_number": {"type": ["string", "null"]},
        },
        "required": ["intent", "order_number"],
        "additionalProperties": False,
    }
    messages = [
        {"role": "system", "content": "Classify the customer's message."},
        {"role": "user", "content": "Where is my order DS20240501? It has not moved for days."},
    ]

    async def run() -> dict:
        model = _model(model_worker)
        try:
            return await model.decide(messages, schema=schema, name="intent")
        finally:
            await model.close()

    decision = asyncio.run(run())
    assert decision["intent"] in {"track_order", "return_item", "talk_to_person", "other"}
    assert set(decision) == {"intent", "order_number"}


def test_decide_rejects_output_that_does_not_match(model_worker: str) -> None:
    # The worker constrains to the schema it is sent; the client re-checks against its own.
    # A schema the grammar accepts but validation narrows (minimum) shows the second check works.
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1000000}},
        "required": ["n"],
        "additionalProperties": False,
    }

    async def run() -> None:
        model = _model(model_worker)
        try:
            await model.decide([{"role": "user", "content": 'Reply with {"n": 1}'}], schema=schema, name="n")
        finally:
            await model.close()

    try:
        asyncio.run(run())
    except LLMInvalidOutput as exc:
        assert "did not match its schema" in str(exc)
    # When the grammar itself enforced the minimum, the decision is valid: nothing to reject.


@pytest.mark.parametrize(
    ("question", "check"),
    [
        (
            "What is the capital of France? Answer in one sentence.",
            lambda text: re.search(r"[A-Za-z]{3,}", text),
        ),
        ("请用中文回答：中国的首都是哪里？", lambda text: CJK.search(text)),
    ],
)
def test_answers_in_the_language_asked(model_worker: str, question: str, check) -> None:
    async def run() -> str:
        model = _model(model_worker)
        try:
            return (
                await model.complete([{"role": "user", "content": question}], max_tokens=40, temperature=0)
            ).text
        finally:
            await model.close()

    assert check(asyncio.run(run()))


@pytest.mark.parametrize(
    ("overrides", "sampling", "status"),
    [
        ({}, {"max_tokens": 5, "messages_repeat": 12000}, 400),  # prompt longer than the context
        ({"model": "no-such-model"}, {"max_tokens": 5}, 404),
        ({}, {"max_tokens": 5, "temperature": -1}, 400),
        ({}, {"max_tokens": -5}, 400),
    ],
    ids=["prompt-too-long", "unknown-model", "negative-temperature", "negative-max-tokens"],
)
def test_bad_requests_get_a_clear_error_not_a_hang(model_worker: str, overrides, sampling, status) -> None:
    sampling = dict(sampling)
    repeat = sampling.pop("messages_repeat", 1)
    messages = [{"role": "user", "content": "hello " * repeat}]

    async def run() -> None:
        model = OpenAICompatibleModel(
            ClientConfig(
                base_url=model_worker, model=overrides.get("model", "shopdesk-chat"), total_timeout=60
            )
        )
        try:
            await model.complete(messages, **sampling)
        finally:
            await model.close()

    with pytest.raises(LLMRequestError) as caught:
        asyncio.run(run())
    assert caught.value.status_code == status
    assert str(caught.value).startswith("model worker refused the request")


def test_first_token_timeout_raises_a_typed_error(model_worker: str) -> None:
    async def run() -> None:
        model = _model(model_worker, first_token_timeout=0.001)
        try:
            await collect_stream(model, [{"role": "user", "content": "Tell me a long story."}], max_tokens=64)
        finally:
            await model.close()

    with pytest.raises(LLMTimeout, match="no first token"):
        asyncio.run(run())


def test_probe_generates_one_token(model_worker: str) -> None:
    token = asyncio.run(probe(base_url=model_worker, api_key="", model="shopdesk-chat", timeout=30))
    assert isinstance(token, str)


def test_circuit_opens_after_repeated_failures_and_fails_fast() -> None:
    async def run() -> list[str]:
        # Its own breaker: other tests' failures against the same dead address must not count.
        model = OpenAICompatibleModel(
            ClientConfig(base_url="http://127.0.0.1:9/v1", model="shopdesk-chat", connect_retries=0),
            breaker=CircuitBreaker(threshold=3, cooldown=60),
        )
        errors = []
        try:
            for _ in range(5):
                try:
                    await model.complete([{"role": "user", "content": "hi"}], max_tokens=1)
                except LLMUnavailable as exc:
                    errors.append(str(exc))
        finally:
            await model.close()
        return errors

    errors = asyncio.run(run())
    assert len(errors) == 5
    assert all("unreachable" in error for error in errors[:3])
    assert all("circuit open" in error for error in errors[3:])


def _running_requests(base_url: str) -> float:
    import urllib.request

    metrics_url = base_url.removesuffix("/v1") + "/metrics"
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("vllm:num_requests_running"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError("vllm:num_requests_running not in /metrics")


def test_a_caller_that_goes_away_cancels_the_generation(model_worker: str) -> None:
    import time

    async def start_then_leave() -> int:
        model = _model(model_worker)
        received = 0
        try:
            stream = model.stream(
                [{"role": "user", "content": "Write a very long essay about parcels."}], max_tokens=500
            )
            async for event in stream:
                if isinstance(event, TextDelta):
                    received += 1
                    if received == 2:
                        assert _running_requests(model_worker) >= 1
                        break
            await stream.aclose()  # what a disconnected visitor's request does
        finally:
            await model.close()
        return received

    assert asyncio.run(start_then_leave()) == 2
    deadline = time.monotonic() + 15
    while _running_requests(model_worker) > 0:
        assert time.monotonic() < deadline, "the worker kept generating for a caller that left"
        time.sleep(0.2)
