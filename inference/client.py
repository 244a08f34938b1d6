"""The client Django uses to talk to the model worker over HTTP.

Any OpenAI-compatible endpoint works -- our vLLM worker, another vLLM, a hosted
API -- chosen by configuration alone (``LLM_BASE_URL``, ``LLM_API_KEY``,
``LLM_MODEL``). Callers depend on the small :class:`ChatModel` protocol
(``complete``, ``stream``, ``decide``), never on the SDK.

Failure handling, all surfaced as :class:`LLMError` subclasses:

- separate time limits for connecting, for the first token and for the whole
  answer, so a stuck engine is noticed in seconds, not at the total timeout;
- retries with backoff for connection errors only, and only before any token
  was produced (a half-streamed answer is never silently restarted);
- a circuit breaker per endpoint: after repeated failures calls fail at once
  for a cool-down, instead of every request waiting for its timeouts;
- closing the stream when the caller goes away (task cancelled, generator
  closed) closes the HTTP response, and vLLM aborts the generation.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import jsonschema
import openai

Message = dict[str, Any]


class LLMError(Exception):
    """Base of every error the client raises."""


class LLMUnavailable(LLMError):
    """The worker could not be reached, failed, or the circuit is open."""


class LLMTimeout(LLMUnavailable):
    """No first token, or no complete answer, within its time limit."""


class LLMRequestError(LLMError):
    """The worker refused the request: prompt too long, unknown model, bad parameters, bad key."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class LLMInvalidOutput(LLMError):
    """A decision did not match its JSON schema."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None
    usage: Usage
    model: str
    latency_s: float


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class StreamEnd:
    finish_reason: str | None
    usage: Usage
    first_token_s: float | None
    latency_s: float


StreamEvent = TextDelta | StreamEnd


class ChatModel(Protocol):
    async def complete(self, messages: Sequence[Message], **sampling: Any) -> Completion: ...

    def stream(self, messages: Sequence[Message], **sampling: Any) -> AsyncIterator[StreamEvent]: ...

    async def decide(
        self, messages: Sequence[Message], *, schema: dict[str, Any], name: str, max_tokens: int = 256
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    model: str
    api_key: str = ""
    connect_timeout: float = 3.0
    first_token_timeout: float = 30.0
    total_timeout: float = 180.0
    connect_retries: int = 2
    retry_backoff: float = 0.5
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    default_sampling: dict[str, Any] = field(default_factory=dict)


class CircuitBreaker:
    """Closed → open after ``threshold`` consecutive failures → half-open after
    ``cooldown`` (one trial call) → closed on success."""

    def __init__(self, *, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_in_flight = False

    def before_call(self) -> None:
        if self.opened_at is None:
            return
        waited = time.monotonic() - self.opened_at
        if waited < self.cooldown or self._trial_in_flight:
            raise LLMUnavailable(
                f"model worker circuit open after {self.failures} failures; retry in {max(0.0, self.cooldown - waited):.0f}s"
            )
        self._trial_in_flight = True

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self.failures += 1
        self._trial_in_flight = False
        if self.failures >= self.threshold:
            self.opened_at = time.monotonic()


_breakers: dict[str, CircuitBreaker] = {}


def _breaker_for(config: ClientConfig) -> CircuitBreaker:
    """One breaker per endpoint and process, shared by every client instance."""
    breaker = _breakers.get(config.base_url)
    if breaker is None:
        breaker = _breakers[config.base_url] = CircuitBreaker(
            threshold=config.breaker_threshold, cooldown=config.breaker_cooldown
        )
    return breaker


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    return Usage(prompt_tokens=raw.prompt_tokens or 0, completion_tokens=raw.completion_tokens or 0)


def _request_error(exc: openai.APIStatusError) -> LLMRequestError:
    detail = exc.message
    body = exc.body
    if isinstance(body, dict):
        detail = str(body.get("message") or body.get("error", {}).get("message") or detail)
    return LLMRequestError(
        f"model worker refused the request ({exc.status_code}): {detail}", status_code=exc.status_code
    )


class OpenAICompatibleModel:
    """:class:`ChatModel` over the official ``openai`` SDK (async)."""

    def __init__(self, config: ClientConfig, *, breaker: CircuitBreaker | None = None) -> None:
        self.config = config
        self.breaker = breaker or _breaker_for(config)
        self._sdk = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "unused",
            # Our own retry policy below; the SDK would also retry 5xx and timeouts.
            max_retries=0,
            timeout=httpx.Timeout(config.total_timeout, connect=config.connect_timeout),
        )

    async def close(self) -> None:
        await self._sdk.close()

    def _params(self, messages: Sequence[Message], sampling: dict[str, Any]) -> dict[str, Any]:
        merged = {**self.config.default_sampling, **sampling}
        extra_body = merged.pop("extra_body", None)
        params: dict[str, Any] = {"model": self.config.model, "messages": list(messages), **merged}
        if extra_body:
            params["extra_body"] = extra_body
        return params

    async def _create(self, params: dict[str, Any]) -> Any:
        """Send the request; retry connection failures (nothing was generated yet)."""
        self.breaker.before_call()
        attempt = 0
        while True:
            try:
                return await self._sdk.chat.completions.create(**params)
            except openai.APITimeoutError as exc:
                self.breaker.record_failure()
                raise LLMTimeout(
                    f"model worker did not answer within {self.config.total_timeout:.0f}s"
                ) from exc
            except openai.APIConnectionError as exc:
                if attempt >= self.config.connect_retries:
                    self.breaker.record_failure()
                    raise LLMUnavailable(f"model worker unreachable at {self.config.base_url}") from exc
                attempt += 1
                await asyncio.sleep(self.config.retry_backoff * 2 ** (attempt - 1))
            except openai.InternalServerError as exc:
                self.breaker.record_failure()
                raise LLMUnavailable(f"model worker failed ({exc.status_code}): {exc.message}") from exc
            except openai.APIStatusError as exc:
                # The worker is healthy; the request itself was wrong.
                self.breaker.record_success()
                raise _request_error(exc) from exc

    async def complete(self, messages: Sequence[Message], **sampling: Any) -> Completion:
        started = time.monotonic()
        response = await self._create(self._params(messages, sampling))
        self.breaker.record_success()
        choice = response.choices[0]
        return Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            usage=_usage(response.usage),
            model=response.model,
            latency_s=time.monotonic() - started,
        )

    async def stream(self, messages: Sequence[Message], **sampling: Any) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        deadline = started + self.config.total_timeout
        params = self._params(messages, sampling)
        params.update(stream=True, stream_options={"include_usage": True})
        response = await self._create(params)
        chunks = response.__aiter__()
        first_token_s: float | None = None
        finish_reason: str | None = None
        usage = Usage()
        try:
            while True:
                remaining = deadline - time.monotonic()
                limit = (
                    min(remaining, self.config.first_token_timeout) if first_token_s is None else remaining
                )
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), timeout=max(0.0, limit))
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    self.breaker.record_failure()
                    what = "first token" if first_token_s is None else "complete answer"
                    raise LLMTimeout(f"no {what} from the model worker within {limit:.0f}s") from exc
                except (httpx.HTTPError, openai.APIError) as exc:
                    self.breaker.record_failure()
                    raise LLMUnavailable(
                        f"the model worker broke off the answer: {exc.__class__.__name__}"
                    ) from exc
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                    text = choice.delta.content if choice.delta else None
                    if text:
                        if first_token_s is None:
                            first_token_s = time.monotonic() - started
                        yield TextDelta(text)
            self.breaker.record_success()
            yield StreamEnd(
                finish_reason=finish_reason,
                usage=usage,
                first_token_s=first_token_s,
                latency_s=time.monotonic() - started,
            )
        finally:
            # Closing the response makes vLLM abort the generation (the caller left).
            await response.close()

    async def decide(
        self, messages: Sequence[Message], *, schema: dict[str, Any], name: str, max_tokens: int = 256
    ) -> dict[str, Any]:
        """A decision the application can rely on: the worker's output is constrained
        to ``schema`` by guided decoding, and checked again here, since another
        endpoint may not constrain. ``max_tokens`` bounds the work when a model never
        closes its JSON (seen with a reasoning model whose thinking block never ended)."""
        completion = await self.complete(
            messages,
            temperature=0,
            max_tokens=max_tokens,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            },
        )
        try:
            value = json.loads(completion.text)
            jsonschema.validate(value, schema)
        except (ValueError, jsonschema.ValidationError) as exc:
            raise LLMInvalidOutput(
                f"decision {name!r} did not match its schema: {completion.text[:200]!r}"
            ) from exc
        return value


class ReplicatedModel:
    """:class:`ChatModel` over several model workers that serve the same model: data-parallel
    replicas, one per GPU, the faster way to give a model that fits one GPU more GPUs (two replicas of
    the Qwen3 profile: 5,692 tok/s at 256 streams against 3,787 for one; benchmarks/REPORT.md).

    Each call goes to the replica with the fewest calls in flight from this client, ties taken in
    turn. A replica that cannot take the call (unreachable, failing with 5xx, or its circuit open)
    hands it to the next one: nothing was generated yet. A timeout is not retried elsewhere (the worker
    took the request and may still be working on it), nor is a stream that breaks after its first
    event (the customer has already seen part of the answer)."""

    def __init__(self, replicas: Sequence[OpenAICompatibleModel]) -> None:
        if not replicas:
            raise ValueError("ReplicatedModel needs at least one model worker")
        self.replicas = list(replicas)
        self.in_flight = [0] * len(self.replicas)
        self._turn = 0

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.close()

    def _order(self) -> list[int]:
        count = len(self.replicas)
        first = self._turn
        self._turn = (self._turn + 1) % count
        return sorted(range(count), key=lambda i: (self.in_flight[i], (i - first) % count))

    async def _first_that_answers(self, call: Any) -> Any:
        failure: LLMUnavailable | None = None
        for index in self._order():
            self.in_flight[index] += 1
            try:
                return await call(self.replicas[index])
            except LLMTimeout:
                raise
            except LLMUnavailable as exc:
                failure = exc
            finally:
                self.in_flight[index] -= 1
        assert failure is not None
        raise LLMUnavailable(f"no model worker could take the request; the last said: {failure}") from failure

    async def complete(self, messages: Sequence[Message], **sampling: Any) -> Completion:
        return await self._first_that_answers(lambda replica: replica.complete(messages, **sampling))

    async def decide(
        self, messages: Sequence[Message], *, schema: dict[str, Any], name: str, max_tokens: int = 256
    ) -> dict[str, Any]:
        return await self._first_that_answers(
            lambda replica: replica.decide(messages, schema=schema, name=name, max_tokens=max_tokens)
        )

    async def stream(self, messages: Sequence[Message], **sampling: Any) -> AsyncIterator[StreamEvent]:
        failure: LLMUnavailable | None = None
        for index in self._order():
            self.in_flight[index] += 1
            events = self.replicas[index].stream(messages, **sampling)
            started = False
            try:
                async for event in events:
                    started = True
                    yield event
                return
            except LLMTimeout:
                raise
            except LLMUnavailable as exc:
                if started:
                    raise
                failure = exc
            finally:
                self.in_flight[index] -= 1
                # Closing the replica's stream closes its response, which stops vLLM's generation.
                await events.aclose()
        assert failure is not None
        raise LLMUnavailable(f"no model worker could take the request; the last said: {failure}") from failure


def model_worker_urls(value: str) -> list[str]:
    """``LLM_BASE_URL``: one model worker's OpenAI-compatible base URL, or several separated by commas
    (replicas of one model)."""
    urls = [url.strip().rstrip("/") for url in value.split(",") if url.strip()]
    if not urls:
        raise ValueError("LLM_BASE_URL names no model worker")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"LLM_BASE_URL: {url!r} is not an http(s) URL")
    if len(set(urls)) != len(urls):
        raise ValueError("LLM_BASE_URL names the same model worker twice")
    return urls


async def probe(*, base_url: str, api_key: str, model: str, timeout: float) -> str:
    """Generate one token. vLLM's ``/health`` can answer 200 while its engine is
    stuck, so readiness asks for real work. Returns the token text."""
    client = OpenAICompatibleModel(
        ClientConfig(
            base_url=base_url,
            api_key=api_key,
            model=model,
            connect_timeout=min(timeout, 3.0),
            first_token_timeout=timeout,
            total_timeout=timeout,
            connect_retries=0,
        ),
        # Readiness must report the truth every time, never the shared breaker's verdict.
        breaker=CircuitBreaker(threshold=1, cooldown=0),
    )
    try:
        completion = await client.complete([{"role": "user", "content": "ping"}], max_tokens=1, temperature=0)
    finally:
        await client.close()
    return completion.text
