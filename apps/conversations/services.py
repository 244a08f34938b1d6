"""One assistant turn: escalation cues, retrieval, a prompt with passages as data,
the model's streamed answer, citations, and everything stored.

The application decides, the model helps: asking for a person, weak retrieval and
an unreachable model are handled by rules, not by the model's judgement.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from apps.conversations import prompting
from apps.conversations.models import Conversation, Message
from apps.core.logging import log_context
from apps.knowledge.models import KnowledgeBase
from apps.knowledge.selectors import SearchHit, kb_search
from inference.client import ChatModel, LLMError, StreamEnd, TextDelta

logger = logging.getLogger(__name__)


def visitor_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StartedConversation:
    conversation: Conversation
    visitor_token: str  # shown once to the widget; only its hash is stored


def conversation_start(*, knowledge_base: KnowledgeBase, language: str = "en") -> StartedConversation:
    token = secrets.token_urlsafe(32)
    conversation = Conversation.objects.create(
        knowledge_base=knowledge_base, visitor_token_hash=visitor_token_hash(token), language=language
    )
    return StartedConversation(conversation=conversation, visitor_token=token)


def _passages(hits: list[SearchHit]) -> list[prompting.Passage]:
    return [
        prompting.Passage(
            n=n, chunk_id=hit.chunk_id, document=hit.filename, heading_path=hit.heading_path, text=hit.text
        )
        for n, hit in enumerate(hits, start=1)
    ]


async def _history(conversation: Conversation, *, before: Message) -> list[tuple[str, str]]:
    rows = [
        message
        async for message in Message.objects.filter(conversation=conversation, pk__lt=before.pk)
        .exclude(role=Message.Role.SYSTEM)
        .order_by("-pk")[: settings.CHAT_HISTORY_MESSAGES]
    ]
    return [("user" if m.role == Message.Role.CUSTOMER else "assistant", m.text) for m in reversed(rows)]


async def _reply(
    conversation: Conversation, text: str, *, outcome: str, status: str | None = None, **fields: Any
) -> Message:
    if status and status != conversation.status:
        conversation.status = status
        await conversation.asave(update_fields=["status", "updated_at"])
    return await Message.objects.acreate(
        conversation=conversation, role=Message.Role.ASSISTANT, text=text, outcome=outcome, **fields
    )


async def assistant_turn(
    *, conversation_id: int, text: str, chat_model: ChatModel
) -> AsyncIterator[dict[str, Any]]:
    """Store the customer's message and yield the assistant's answer as events:
    ``{"type": "delta", "text": ...}`` while streaming, then one
    ``{"type": "message", ...}`` with the stored message (text, citations, outcome)."""
    conversation = await Conversation.objects.select_related("knowledge_base").aget(pk=conversation_id)
    with log_context(conversation_id=conversation.pk):
        customer_message = await Message.objects.acreate(
            conversation=conversation, role=Message.Role.CUSTOMER, text=text
        )
        language = prompting.detect_language(text)
        if conversation.status in (Conversation.Status.WAITING_FOR_AGENT, Conversation.Status.AGENT):
            # A person owns (or is about to own) the conversation: the bot stays silent.
            yield {"type": "queued", "status": conversation.status}
            return
        if prompting.wants_person(text):
            reply = await _reply(
                conversation, prompting.HANDOFF[language], outcome="asked_for_person",
                status=Conversation.Status.WAITING_FOR_AGENT,
            )  # fmt: skip
            yield _message_event(reply, conversation)
            return

        hits = await sync_to_async(kb_search)(
            knowledge_base=conversation.knowledge_base, query=text, k=settings.CHAT_PASSAGES
        )
        best = max((hit.similarity or 0.0 for hit in hits), default=0.0)
        if best < settings.CHAT_MIN_SIMILARITY:
            logger.info("low retrieval confidence", extra={"best_similarity": best})
            reply = await _reply(
                conversation, prompting.I_DONT_KNOW[language], outcome="low_confidence",
                status=Conversation.Status.WAITING_FOR_AGENT,
            )  # fmt: skip
            yield _message_event(reply, conversation)
            return

        passages = _passages(hits)
        messages = prompting.build_messages(
            system_prompt=conversation.knowledge_base.system_prompt,
            passages=passages,
            history=await _history(conversation, before=customer_message),
            question=text,
            language=language,
        )
        parts: list[str] = []
        end: StreamEnd | None = None
        started = time.monotonic()
        try:
            async for event in chat_model.stream(
                messages,
                temperature=settings.CHAT_TEMPERATURE,
                top_p=settings.CHAT_TOP_P,
                max_tokens=settings.CHAT_MAX_TOKENS,
            ):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    yield {"type": "delta", "text": event.text}
                else:
                    end = event
        except LLMError as exc:
            logger.warning("model worker failed during a turn", extra={"error": str(exc)})
            reply = await _reply(
                conversation, prompting.MODEL_UNAVAILABLE[language], outcome="model_unavailable"
            )
            yield _message_event(reply, conversation)
            return
        answer = "".join(parts).strip()
        reply = await _reply(
            conversation,
            answer,
            outcome="answered",
            citations=prompting.citations_for(answer, passages),
            model=settings.LLM_MODEL,
            prompt_tokens=end.usage.prompt_tokens if end else 0,
            completion_tokens=end.usage.completion_tokens if end else 0,
            first_token_ms=round(end.first_token_s * 1000) if end and end.first_token_s else None,
            latency_ms=round((time.monotonic() - started) * 1000),
        )
        yield _message_event(reply, conversation)


def _message_event(message: Message, conversation: Conversation) -> dict[str, Any]:
    return {
        "type": "message",
        "id": message.pk,
        "text": message.text,
        "citations": message.citations,
        "outcome": message.outcome,
        "conversation_status": conversation.status,
    }


def conversation_handoff_request(*, conversation: Conversation) -> Message | None:
    """The visitor pressed "talk to a person". Returns the assistant's note, or None when a
    person was already asked for or is there."""
    if conversation.status != Conversation.Status.BOT:
        return None
    conversation.status = Conversation.Status.WAITING_FOR_AGENT
    conversation.save(update_fields=["status", "updated_at"])
    language = conversation.language if conversation.language in prompting.HANDOFF else "en"
    return Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text=prompting.HANDOFF[language],
        outcome="asked_for_person",
    )


def message_feedback_set(*, conversation: Conversation, message_id: int, feedback: str) -> bool:
    """Thumbs up or down on one of the assistant's answers in this conversation."""
    if feedback not in Message.Feedback.values:
        raise ValueError(f"feedback must be one of {', '.join(Message.Feedback.values)}")
    updated = Message.objects.filter(
        pk=message_id, conversation=conversation, role=Message.Role.ASSISTANT
    ).update(feedback=feedback)
    return updated == 1
