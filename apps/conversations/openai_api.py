"""The assistant behind an OpenAI-compatible API: ``POST /v1/chat/completions`` and
``GET /v1/models``, so standard OpenAI clients, load generators and evaluation tools can
talk to it.

The model name is a knowledge base's slug; a per-knowledge-base API key (``kb_apikey``)
is sent as ``Authorization: Bearer sdk_…`` and grants that knowledge base only. Each call
runs the widget's pipeline (``services.assistant_answer``): the last ``user`` message is the
question, earlier ``user``/``assistant`` messages are the history, and the client's
``system`` messages are ignored (the knowledge base's own instructions apply). Citations
come back in an extra ``citations`` field, ``outcome`` says why the assistant answered as
it did. Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``.

Reference: https://platform.openai.com/docs/api-reference/chat
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.conversations.ratelimit import allow
from apps.conversations.services import (
    Answer,
    AnswerDelta,
    Sampling,
    assistant_api_turn,
    chat_model_shared,
)
from apps.conversations.sse import event_stream_response
from apps.knowledge.models import KnowledgeBaseApiKey
from apps.knowledge.services import api_key_authenticate

HISTORY_ROLES = {"user", "assistant"}
IGNORED_ROLES = {"system", "developer"}


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, *, type: str, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param

    def response(self) -> JsonResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        response = JsonResponse(body, status=self.status)
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="shopdesk"'
        return response


def _bad_request(message: str, *, param: str | None = None) -> ApiError:
    return ApiError(400, message, type="invalid_request_error", code="invalid_request", param=param)


async def _authenticate(request: HttpRequest) -> KnowledgeBaseApiKey:
    header = request.headers.get("Authorization", "")
    key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    if not key:
        raise ApiError(
            401,
            "Missing API key: send 'Authorization: Bearer sdk_…' (python manage.py kb_apikey --kb SLUG).",
            type="invalid_request_error",
            code="missing_api_key",
        )
    api_key = await api_key_authenticate(key=key)
    if api_key is None:
        raise ApiError(
            401, "Incorrect or revoked API key.", type="invalid_request_error", code="invalid_api_key"
        )
    if not await allow(key=f"apikey:{api_key.pk}", limit=settings.CHAT_API_REQUESTS_PER_KEY_PER_MINUTE):
        raise ApiError(
            429,
            f"Rate limit of {settings.CHAT_API_REQUESTS_PER_KEY_PER_MINUTE} requests per minute for this "
            "API key reached; retry in a minute.",
            type="requests",
            code="rate_limit_exceeded",
        )
    return api_key


def _model_json(api_key: KnowledgeBaseApiKey) -> dict[str, Any]:
    knowledge_base = api_key.knowledge_base
    return {
        "id": knowledge_base.slug,
        "object": "model",
        "created": int(knowledge_base.created_at.timestamp()),
        "owned_by": "shopdesk",
        "name": knowledge_base.name,
    }


@require_http_methods(["GET"])
async def models_list(request: HttpRequest) -> JsonResponse:
    try:
        api_key = await _authenticate(request)
    except ApiError as error:
        return error.response()
    return JsonResponse({"object": "list", "data": [_model_json(api_key)]})


@require_http_methods(["GET"])
async def model_retrieve(request: HttpRequest, model: str) -> JsonResponse:
    try:
        api_key = await _authenticate(request)
        _granted(api_key, model)
    except ApiError as error:
        return error.response()
    return JsonResponse(_model_json(api_key))


def _granted(api_key: KnowledgeBaseApiKey, model: str) -> None:
    # Another knowledge base's name gets the same answer as an unknown one: a key reveals nothing
    # about the knowledge bases it does not grant.
    if model != api_key.knowledge_base.slug:
        raise ApiError(
            404,
            f"The model '{model}' does not exist or you do not have access to it.",
            type="invalid_request_error",
            code="model_not_found",
            param="model",
        )


@dataclass(frozen=True)
class ChatRequest:
    model: str
    question: str
    history: list[tuple[str, str]]
    stream: bool
    include_usage: bool
    sampling: Sampling


def _number(body: dict[str, Any], name: str, low: float, high: float, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _bad_request(f"'{name}' must be a number from {low:g} to {high:g}.", param=name)
    return float(value)


def _max_tokens(body: dict[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _bad_request(f"'{name}' must be a positive integer.", param=name)
        # The knowledge base's answers are bounded by the deployment's setting.
        return min(value, settings.CHAT_MAX_TOKENS)
    return settings.CHAT_MAX_TOKENS


def _parse(request: HttpRequest) -> ChatRequest:
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    # A generous bound on the bytes of a valid body (4 bytes a character, the history window).
    if len(request.body) > limit * 4 * (settings.CHAT_HISTORY_MESSAGES + 2) + 16384:
        raise ApiError(413, "The request body is too large.", type="invalid_request_error", code="too_large")
    try:
        body = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        raise _bad_request("The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise _bad_request("The body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad_request("'model' is required: the knowledge base's slug.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad_request("'messages' must be a non-empty array.", param="messages")
    turns: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _bad_request(f"{param} must be an object with 'role' and 'content'.", param=param)
        role, content = message.get("role"), message.get("content")
        if role not in HISTORY_ROLES | IGNORED_ROLES:
            raise _bad_request(
                f"{param}.role must be one of 'system', 'developer', 'user', 'assistant'"
                " (tools are not supported).",
                param=f"{param}.role",
            )
        if not isinstance(content, str):
            raise _bad_request(f"{param}.content must be a string.", param=f"{param}.content")
        if role == "user" and len(content) > limit:
            raise ApiError(
                413,
                f"{param}.content is longer than {limit} characters.",
                type="invalid_request_error",
                code="message_too_long",
                param=f"{param}.content",
            )
        if role in HISTORY_ROLES:
            turns.append((role, content))
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise _bad_request("The last message must be a non-empty 'user' message.", param="messages")
    n = body.get("n", 1)
    if n != 1 or isinstance(n, bool):
        raise _bad_request("Only n=1 is supported.", param="n")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad_request("'stream' must be true or false.", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _bad_request("'stream_options' must be an object.", param="stream_options")
    history = [(role, text) for role, text in turns[:-1] if text.strip()]
    return ChatRequest(
        model=model,
        question=turns[-1][1].strip(),
        history=history[-settings.CHAT_HISTORY_MESSAGES :],
        stream=stream,
        include_usage=bool(options.get("include_usage")),
        sampling=Sampling(
            temperature=_number(body, "temperature", 0, 2, settings.CHAT_TEMPERATURE),
            top_p=_number(body, "top_p", 0.01, 1, settings.CHAT_TOP_P),
            max_tokens=_max_tokens(body),
        ),
    )


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


class _Completion:
    """The identity and the OpenAI objects of one completion."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def _base(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self._base("chat.completion.chunk"), "choices": [choice], **extra}

    def usage_chunk(self, answer: Answer) -> dict[str, Any]:
        return {**self._base("chat.completion.chunk"), "choices": [], "usage": _usage(answer)}

    def completion(self, answer: Answer) -> dict[str, Any]:
        message = {"role": "assistant", "content": answer.text, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}
        return {
            **self._base("chat.completion"),
            "choices": [choice],
            "usage": _usage(answer),
            "citations": answer.citations,
            "outcome": answer.outcome,
        }


def _data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _stream_frames(
    turn: AsyncGenerator[Answer | AnswerDelta, None],
    completion: _Completion,
    *,
    include_usage: bool,
) -> AsyncGenerator[str, None]:
    """``chat.completion.chunk`` events, the last content chunk carrying ``citations``, then
    ``data: [DONE]``. Closing this generator closes the pipeline and the model worker's stream."""
    try:
        yield _data(completion.chunk({"role": "assistant", "content": ""}))
        streamed = False
        async for event in turn:
            if isinstance(event, AnswerDelta):
                streamed = True
                yield _data(completion.chunk({"content": event.text}))
                continue
            if event.outcome != "answered":
                # A rule answered (or the model failed): the whole text at once, after whatever the
                # model had already streamed.
                yield _data(completion.chunk({"content": ("\n\n" if streamed else "") + event.text}))
            yield _data(
                completion.chunk({}, event.finish_reason, citations=event.citations, outcome=event.outcome)
            )
            if include_usage:
                yield _data(completion.usage_chunk(event))
        yield "data: [DONE]\n\n"
    finally:
        await turn.aclose()


@csrf_exempt
@require_http_methods(["POST"])
async def chat_completions(request: HttpRequest) -> HttpResponse:
    try:
        api_key = await _authenticate(request)
        chat = _parse(request)
        _granted(api_key, chat.model)
    except ApiError as error:
        return error.response()

    model = chat_model_shared()
    turn = assistant_api_turn(
        knowledge_base=api_key.knowledge_base,
        key_prefix=api_key.prefix,
        history=chat.history,
        question=chat.question,
        chat_model=model,
        sampling=chat.sampling,
    )
    completion = _Completion(chat.model)
    if not chat.stream:
        # Django cancels this view when the client disconnects (ASGI); the cancellation reaches
        # the model worker's stream inside the pipeline and aborts the generation.
        try:
            answer = [event async for event in turn if isinstance(event, Answer)][-1]
        finally:
            await turn.aclose()
        return JsonResponse(completion.completion(answer), json_dumps_params={"ensure_ascii": False})

    return event_stream_response(_stream_frames(turn, completion, include_usage=chat.include_usage))
