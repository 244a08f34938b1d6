"""The widget's HTTP API: start a conversation, send a message and stream the answer
(server-sent events), read the history. Visitors have no accounts: a conversation's
bearer token, shown once at creation, is the only way to reach it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.conversations.identity import (
    MAX_CUSTOMER_ID_CHARS,
    ClaimedIdentity,
    IdentityRejected,
    verified_customer_id,
)
from apps.conversations.models import Conversation, Message
from apps.conversations.ratelimit import allow
from apps.conversations.services import (
    assistant_turn,
    chat_model_shared,
    conversation_handoff_request,
    conversation_start,
    message_feedback_set,
    visitor_token_hash,
)
from apps.conversations.sse import event_stream_response
from apps.knowledge.models import KnowledgeBase


def _error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def _visitor_conversation(request: HttpRequest, conversation_id: int) -> Conversation | None:
    """The conversation, if the bearer token is its visitor's; otherwise None (answered 404,
    so another visitor cannot even learn that it exists)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return (
        await Conversation.objects.select_related("knowledge_base")
        .filter(
            pk=conversation_id, visitor_token_hash=visitor_token_hash(header.removeprefix("Bearer ").strip())
        )
        .exclude(status=Conversation.Status.CLOSED)
        .afirst()
    )


@csrf_exempt
@require_http_methods(["POST"])
async def conversation_create(request: HttpRequest) -> JsonResponse:
    if not await allow(key=f"ip:{_client_ip(request)}:create", limit=settings.CHAT_CREATE_PER_IP_PER_MINUTE):
        return _error(429, "too many new conversations; try again in a minute")
    body = _json_body(request)
    if body is None:
        return _error(400, "the body must be a JSON object")
    knowledge_base = await KnowledgeBase.objects.filter(slug=str(body.get("kb", ""))).afirst()
    if knowledge_base is None:
        return _error(404, "unknown knowledge base")
    language = "zh" if str(body.get("language", "")).lower().startswith("zh") else "en"
    claim = ClaimedIdentity(
        customer_id=str(body.get("customer_id") or "").strip(),
        signature=str(body.get("customer_signature") or ""),
    )
    if len(claim.customer_id) > MAX_CUSTOMER_ID_CHARS:
        return _error(400, f"customer ids are limited to {MAX_CUSTOMER_ID_CHARS} characters")
    try:
        customer_id = verified_customer_id(knowledge_base=knowledge_base, claim=claim)
    except IdentityRejected as exc:
        return _error(403, f"identity verification failed: {exc}; no conversation was started")
    started = await asyncio.to_thread(
        conversation_start, knowledge_base=knowledge_base, language=language, verified_customer_id=customer_id
    )
    return JsonResponse(
        {"id": started.conversation.pk, "token": started.visitor_token, "verified": bool(customer_id)},
        status=201,
    )


def message_json(message: Message) -> dict[str, Any]:
    """A conversation message as the widget and the agent console read it."""
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "citations": message.citations,
        "outcome": message.outcome,
        "feedback": message.feedback,
        "created_at": message.created_at.isoformat(),
    }


@require_http_methods(["GET"])
async def conversation_messages(request: HttpRequest, conversation_id: int) -> JsonResponse:
    """The history, or with ``?after=<message id>`` only what came since: the open widget polls
    this every few seconds for an agent's replies and the conversation's status (plain requests
    pass any proxy; an agent's reply may wait a few seconds, which chat tolerates)."""
    conversation = await _visitor_conversation(request, conversation_id)
    if conversation is None:
        return _error(404, "no such conversation")
    after = request.GET.get("after", "0")
    if not after.isdigit():
        return _error(400, "after must be a message id")
    rows = Message.objects.filter(conversation=conversation, pk__gt=int(after)).order_by("pk")
    messages = [message_json(m) async for m in rows]
    return JsonResponse({"status": conversation.status, "messages": messages})


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


@csrf_exempt
@require_http_methods(["POST"])
async def conversation_message_send(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = await _visitor_conversation(request, conversation_id)
    if conversation is None:
        return _error(404, "no such conversation")
    if len(request.body) > settings.CHAT_MAX_MESSAGE_CHARS * 4 + 1024:
        return _error(413, f"messages are limited to {settings.CHAT_MAX_MESSAGE_CHARS} characters")
    body = _json_body(request)
    if body is None or not isinstance(body.get("text"), str) or not body["text"].strip():
        return _error(400, 'send {"text": "your message"}')
    text = body["text"].strip()
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        return _error(413, f"messages are limited to {settings.CHAT_MAX_MESSAGE_CHARS} characters")
    if not await allow(key=f"visitor:{conversation.pk}", limit=settings.CHAT_MESSAGES_PER_VISITOR_PER_MINUTE):
        return _error(429, "you are sending messages too quickly; please wait a moment")
    if not await allow(key=f"ip:{_client_ip(request)}", limit=settings.CHAT_MESSAGES_PER_IP_PER_MINUTE):
        return _error(429, "too many messages from your network; please wait a moment")

    model = chat_model_shared()

    async def frames() -> AsyncIterator[str]:
        turn = assistant_turn(conversation_id=conversation.pk, text=text, chat_model=model)
        try:
            async for event in turn:
                yield _sse(event)
        finally:
            await turn.aclose()

    return event_stream_response(frames())


@csrf_exempt
@require_http_methods(["POST"])
async def conversation_handoff(request: HttpRequest, conversation_id: int) -> JsonResponse:
    conversation = await _visitor_conversation(request, conversation_id)
    if conversation is None:
        return _error(404, "no such conversation")
    note = await asyncio.to_thread(conversation_handoff_request, conversation=conversation)
    return JsonResponse({"status": conversation.status, "message": message_json(note) if note else None})


@csrf_exempt
@require_http_methods(["POST"])
async def message_feedback(request: HttpRequest, conversation_id: int, message_id: int) -> JsonResponse:
    conversation = await _visitor_conversation(request, conversation_id)
    if conversation is None:
        return _error(404, "no such conversation")
    body = _json_body(request)
    if body is None or body.get("feedback") not in Message.Feedback.values:
        return _error(400, 'send {"feedback": "up"} or {"feedback": "down"}')
    found = await asyncio.to_thread(
        message_feedback_set, conversation=conversation, message_id=message_id, feedback=body["feedback"]
    )
    if not found:
        return _error(404, "no such answer in this conversation")
    return JsonResponse({"id": message_id, "feedback": body["feedback"]})
