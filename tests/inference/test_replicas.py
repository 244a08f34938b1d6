"""Several model workers behind one client (``LLM_BASE_URL`` with replicas), against the real vLLM
worker on the CPU. Replicas are reached through TCP relays started here, which count the requests
they carry and can cut a response after some bytes (a worker that dies mid-answer); a replica that is
down is a closed port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit

import pytest

from inference.client import (
    ClientConfig,
    LLMTimeout,
    LLMUnavailable,
    OpenAICompatibleModel,
    ReplicatedModel,
    StreamEnd,
    TextDelta,
    model_worker_urls,
)
from tests.conversations.helpers import run_async
from tests.inference.helpers import collect_stream

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "Say hello."}]
SCHEMA = {
    "type": "object",
    "properties": {"tool": {"type": "string", "enum": ["answer", "open_ticket"]}},
    "required": ["tool"],
    "additionalProperties": False,
}


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens once the probe socket is closed


class Relay:
    """A TCP relay to the model worker on a port of its own: one replica's address."""

    def __init__(self, target_url: str, *, cut_after_bytes: int | None = None) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname, parts.port)
        self.cut_after_bytes = cut_after_bytes
        self.requests = 0  # HTTP requests carried (the client keeps connections alive between them)
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Relay:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), timeout=5)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        worker_reader, worker_writer = await asyncio.open_connection(*self.target)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None) -> None:
            sent = 0
            try:
                while data := await reader.read(65536):
                    if writer is worker_writer:
                        self.requests += data.count(b"POST /v1/")
                    if limit is not None and sent + len(data) > limit:
                        writer.write(data[: limit - sent])
                        await writer.drain()
                        break
                    sent += len(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        await asyncio.gather(
            pipe(client_reader, worker_writer, None),
            pipe(worker_reader, client_writer, self.cut_after_bytes),
            return_exceptions=True,
        )


def _replicas(*urls: str, **overrides) -> ReplicatedModel:
    settings = {"connect_retries": 0, "breaker_threshold": 2, "breaker_cooldown": 60.0, **overrides}
    return ReplicatedModel(
        [OpenAICompatibleModel(ClientConfig(base_url=url, model="shopdesk-chat", **settings)) for url in urls]
    )


async def _answer(model: ReplicatedModel, **sampling) -> tuple[str, StreamEnd]:
    return await collect_stream(model, QUESTION, max_tokens=8, temperature=0, **sampling)


def test_calls_are_spread_over_the_replicas(model_worker: str) -> None:
    async def run() -> tuple[int, int, list[str]]:
        async with Relay(model_worker) as one, Relay(model_worker) as two:
            model = _replicas(one.url, two.url)
            try:
                # Four streams at once: two on each replica (fewest in flight first).
                answers = await asyncio.gather(*(_answer(model) for _ in range(4)))
                # One after another: taken in turn.
                await model.complete(QUESTION, max_tokens=2, temperature=0)
                await model.complete(QUESTION, max_tokens=2, temperature=0)
                assert model.in_flight == [0, 0]
            finally:
                await model.close()
            return one.requests, two.requests, [text for text, _ in answers]

    first, second, texts = run_async(run())
    assert (first, second) == (3, 3)
    assert all(texts) and len(set(texts)) == 1  # greedy: every replica gives the same answer


def test_a_replica_that_is_down_is_skipped_and_then_left_alone(model_worker: str) -> None:
    async def run() -> tuple[int, list[str]]:
        async with Relay(model_worker) as alive:
            model = _replicas(_closed_port_url(), alive.url)
            try:
                texts = [(await _answer(model))[0] for _ in range(3)]
                decision = await model.decide(QUESTION, schema=SCHEMA, name="route", max_tokens=16)
                assert decision["tool"] in ("answer", "open_ticket")
                # Two failures opened the dead replica's circuit: it is no longer tried at all.
                assert model.replicas[0].breaker.opened_at is not None
            finally:
                await model.close()
            return alive.requests, texts

    requests, texts = run_async(run())
    assert all(texts) and requests == 4


def test_no_replica_up_is_one_clear_error() -> None:
    async def run() -> None:
        model = _replicas(_closed_port_url(), _closed_port_url())
        try:
            with pytest.raises(LLMUnavailable, match="no model worker could take the request"):
                await _answer(model)
            with pytest.raises(LLMUnavailable, match="no model worker could take the request"):
                await model.complete(QUESTION, max_tokens=2)
        finally:
            await model.close()

    run_async(run())


def test_an_answer_cut_off_midway_is_not_repeated_on_another_replica(model_worker: str) -> None:
    async def run() -> tuple[int, int]:
        # Enough bytes for the response headers and a first chunk, not for the whole answer.
        async with Relay(model_worker, cut_after_bytes=700) as dying, Relay(model_worker) as healthy:
            model = _replicas(dying.url, healthy.url)
            model._turn = 0  # the first call goes to the dying replica
            try:
                seen: list[str] = []
                with pytest.raises(LLMUnavailable):
                    async for event in model.stream(QUESTION, max_tokens=200, temperature=0):
                        if isinstance(event, TextDelta):
                            seen.append(event.text)
                assert seen, "part of the answer had arrived before the cut"
            finally:
                await model.close()
            return dying.requests, healthy.requests

    dying, healthy = run_async(run())
    assert dying == 1 and healthy == 0


def test_a_timeout_is_not_retried_on_another_replica(model_worker: str) -> None:
    async def run() -> int:
        async with Relay(model_worker) as slow, Relay(model_worker) as other:
            model = _replicas(slow.url, other.url, first_token_timeout=0.001)
            model._turn = 0
            try:
                with pytest.raises(LLMTimeout):
                    await _answer(model)
            finally:
                await model.close()
            return other.requests

    assert run_async(run()) == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "names no model worker"),
        (" , ", "names no model worker"),
        ("model-worker:8000/v1", "not an http"),
        ("http://a:8000/v1,http://a:8000/v1/", "twice"),
    ],
)
def test_a_bad_model_worker_list_is_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        model_worker_urls(value)


def test_a_list_of_model_workers_is_read_in_order() -> None:
    assert model_worker_urls(" http://a:8000/v1/ ,http://b:8000/v1") == [
        "http://a:8000/v1",
        "http://b:8000/v1",
    ]
