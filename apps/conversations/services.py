"""The assistant: escalation cues, retrieval, a prompt with passages as data, the model's
streamed answer, citations, and everything stored.

``assistant_answer`` is the pipeline itself and stores nothing: it takes a knowledge base,
the earlier messages and the question, and yields the answer as events. Its callers own
persistence, in one place each: ``assistant_turn`` for the widget (a stored conversation
whose status follows the answer) and ``assistant_api_turn`` for the OpenAI-compatible
endpoint (one closed conversation per call); ``kb_eval --answers`` stores nothing.

The application decides, the model helps: asking for a person, weak retrieval and
an unreachable model are handled by rules, not by the model's judgement.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction

from apps.conversations import prompting
from apps.conversations.models import Conversation, Message
from apps.core.logging import log_context
from apps.core.loops import loop_shared
from apps.knowledge.models import KnowledgeBase
from apps.knowledge.selectors import SearchHit, kb_search
from apps.tools.flow import ToolSession, handoff_requested, negative_feedback
from inference.client import (
    ChatModel,
    ClientConfig,
    LLMError,
    OpenAICompatibleModel,
    ReplicatedModel,
    StreamEnd,
    TextDelta,
    model_worker_urls,
)

logger = logging.getLogger(__name__)


def visitor_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StartedConversation:
    conversation: Conversation
    visitor_token: str  # shown once to the widget; only its hash is stored


def conversation_start(
    *, knowledge_base: KnowledgeBase, language: str = "en", verified_customer_id: str = ""
) -> StartedConversation:
    """A new conversation and its visitor token. ``verified_customer_id`` comes only from
    ``identity.verified_customer_id``; it is fixed for the conversation's life, so a token can
    never be moved to another customer (a different customer gets a new conversation)."""
    token = secrets.token_urlsafe(32)
    conversation = Conversation.objects.create(
        knowledge_base=knowledge_base,
        visitor_token_hash=visitor_token_hash(token),
        language=language,
        verified_customer_id=verified_customer_id,
    )
    return StartedConversation(conversation=conversation, visitor_token=token)


def _client_configs() -> list[ClientConfig]:
    """One client configuration per model worker named in ``LLM_BASE_URL`` (several: replicas)."""
    return [
        ClientConfig(
            base_url=url,
            api_key=settings.LLM_API_KEY,
            model=settings.LLM_MODEL,
            connect_timeout=settings.LLM_CONNECT_TIMEOUT,
            first_token_timeout=settings.LLM_FIRST_TOKEN_TIMEOUT,
            total_timeout=settings.LLM_TOTAL_TIMEOUT,
        )
        for url in model_worker_urls(settings.LLM_BASE_URL)
    ]


def _chat_model(configs: list[ClientConfig]) -> ChatModel:
    if len(configs) == 1:
        return OpenAICompatibleModel(configs[0])
    return ReplicatedModel([OpenAICompatibleModel(config) for config in configs])


def chat_model_from_settings() -> ChatModel:
    """A new client for the model worker(s) named by ``LLM_BASE_URL`` / ``LLM_MODEL``; close it when done."""
    return _chat_model(_client_configs())


def chat_model_shared() -> ChatModel:
    """The model worker's client for this event loop, built once and kept open: never close it.

    Building a client costs ~50 ms (the SDK's HTTP client and its TLS context; measured on the CI
    machine), more than the rest of the request path before the model call, and a kept client
    reuses its connections to the worker.
    """
    configs = _client_configs()
    key = ("model worker", *[(config.base_url, config.api_key, config.model, config.connect_timeout,
           config.first_token_timeout, config.total_timeout) for config in configs])  # fmt: skip
    return loop_shared(key, lambda: _chat_model(configs))


# --- The pipeline (stores nothing) ---------------------------------------------------------


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_tokens: int

    @classmethod
    def from_settings(cls) -> Sampling:
        return cls(
            temperature=settings.CHAT_TEMPERATURE,
            top_p=settings.CHAT_TOP_P,
            max_tokens=settings.CHAT_MAX_TOKENS,
        )


@dataclass(frozen=True)
class AnswerDelta:
    text: str


@dataclass(frozen=True)
class Answer:
    """The assistant's whole answer, as it is stored and shown."""

    text: str
    # "answered", "low_confidence", "asked_for_person" or "model_unavailable".
    outcome: str
    language: str
    # The assistant offered a person for a reason a person should act on (asked for, or the
    # documents do not answer); a widget conversation then waits for an agent.
    escalate: bool = False
    citations: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_ms: int | None = None
    latency_ms: int | None = None

    def message_fields(self) -> dict[str, Any]:
        """The fields of the assistant's stored ``Message``."""
        fields = asdict(self)
        for name in ("language", "escalate", "finish_reason"):
            del fields[name]
        return fields


AnswerEvent = AnswerDelta | Answer


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    passages: list[prompting.Passage]
    language: str
    # What retrieval searched for: the question, or its standalone rewrite when there was history.
    search_query: str = ""


def _passages(hits: list[SearchHit]) -> list[prompting.Passage]:
    return [
        prompting.Passage(
            n=n, chunk_id=hit.chunk_id, document=hit.filename, heading_path=hit.heading_path, text=hit.text
        )
        for n, hit in enumerate(hits, start=1)
    ]


async def search_query_rewrite(
    *, history: list[tuple[str, str]], question: str, chat_model: ChatModel
) -> str:
    """``question`` as a standalone search query ("And for sofas?" after a question about
    returns becomes "return policy for sofas"), by a short constrained-output call. Without
    history, or with rewriting off, there is nothing to resolve and no call is made; on any
    model error the question itself is searched (the answer's own call reports the outage)."""
    max_tokens = settings.CHAT_QUERY_REWRITE_MAX_TOKENS
    if not history or max_tokens <= 0:
        return question
    started = time.monotonic()
    try:
        # A non-streamed call waits up to LLM_TOTAL_TIMEOUT; a rewrite may not hold a turn that long.
        async with asyncio.timeout(settings.LLM_FIRST_TOKEN_TIMEOUT):
            decision = await chat_model.decide(
                prompting.rewrite_messages(history=history, question=question),
                schema=prompting.REWRITE_SCHEMA,
                name="search_query",
                max_tokens=max_tokens,
            )
    except (LLMError, TimeoutError) as exc:
        logger.warning("query rewrite failed; searching the message as sent", extra={"error": str(exc)})
        return question
    query = " ".join(str(decision["query"]).split())
    logger.info(
        "search query rewritten",
        extra={"search_query": query, "rewrite_ms": round((time.monotonic() - started) * 1000)},
    )
    return query or question


async def assistant_prompt(
    *,
    knowledge_base: KnowledgeBase,
    history: list[tuple[str, str]],
    question: str,
    chat_model: ChatModel | None = None,
) -> Prompt | Answer:
    """The messages the model gets for ``question``, or the answer itself when a rule decides
    (a request for a person, or no passage close enough). ``history`` is (role, text) oldest
    first, role "user" or "assistant". With ``chat_model`` and history, retrieval searches the
    question's standalone rewrite (``search_query_rewrite``)."""
    language = prompting.detect_language(question)
    if prompting.wants_person(question):
        return Answer(
            text=prompting.HANDOFF[language], outcome="asked_for_person", language=language, escalate=True
        )
    search_query = question
    if chat_model is not None:
        search_query = await search_query_rewrite(history=history, question=question, chat_model=chat_model)
    hits = await sync_to_async(kb_search)(
        knowledge_base=knowledge_base, query=search_query, k=settings.CHAT_PASSAGES
    )
    best = max((hit.similarity or 0.0 for hit in hits), default=0.0)
    if best < settings.CHAT_MIN_SIMILARITY:
        logger.info("low retrieval confidence", extra={"best_similarity": best})
        return Answer(
            text=prompting.I_DONT_KNOW[language], outcome="low_confidence", language=language, escalate=True
        )
    passages = _passages(hits)
    messages = prompting.build_messages(
        system_prompt=knowledge_base.system_prompt,
        passages=passages,
        history=history,
        question=question,
        language=language,
    )
    return Prompt(messages=messages, passages=passages, language=language, search_query=search_query)


def _database_connection_release() -> None:
    """Close this thread's connection unless a transaction (a test's, say) still needs it."""
    if not connection.in_atomic_block:
        connection.close()


async def assistant_answer(
    *,
    knowledge_base: KnowledgeBase,
    history: list[tuple[str, str]],
    question: str,
    chat_model: ChatModel,
    sampling: Sampling | None = None,
    tools: ToolSession | None = None,
) -> AsyncIterator[AnswerEvent]:
    """Yield the answer to ``question`` as ``AnswerDelta`` events while the model streams,
    then one ``Answer``. Closing the iterator closes the model worker's stream, which aborts
    the generation. With ``tools``, a message that needs a tool step (an order lookup) is
    answered by it (``apps.tools.flow``)."""
    # Tool steps come first: an order question is answered from the carrier's data, not the documents.
    if tools is not None:
        reply = await tools.reply(history=history, question=question, chat_model=chat_model)
        if reply is not None:
            yield Answer(
                text=reply.text, outcome=reply.outcome, language=reply.language, escalate=reply.escalate
            )
            return
    prompt = await assistant_prompt(
        knowledge_base=knowledge_base, history=history, question=question, chat_model=chat_model
    )
    if isinstance(prompt, Answer):
        yield prompt
        return
    sampling = sampling or Sampling.from_settings()
    parts: list[str] = []
    end: StreamEnd | None = None
    # Seconds to minutes of waiting for the model follow: give the database connection back
    # instead of holding one per open stream (100 streams exhausted PostgreSQL's 100
    # connections: benchmarks/widget_streams.py). Storing the answer opens one again.
    await sync_to_async(_database_connection_release)()
    started = time.monotonic()
    try:
        async for event in chat_model.stream(
            prompt.messages,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
        ):
            if isinstance(event, TextDelta):
                parts.append(event.text)
                yield AnswerDelta(event.text)
            else:
                end = event
    except LLMError as exc:
        logger.warning("model worker failed during a turn", extra={"error": str(exc)})
        yield Answer(
            text=prompting.MODEL_UNAVAILABLE[prompt.language],
            outcome="model_unavailable",
            language=prompt.language,
        )
        return
    text = "".join(parts).strip()
    yield Answer(
        text=text,
        outcome="answered",
        language=prompt.language,
        citations=prompting.citations_for(text, prompt.passages),
        finish_reason=(end.finish_reason if end else None) or "stop",
        model=settings.LLM_MODEL,
        prompt_tokens=end.usage.prompt_tokens if end else 0,
        completion_tokens=end.usage.completion_tokens if end else 0,
        first_token_ms=round(end.first_token_s * 1000) if end and end.first_token_s else None,
        latency_ms=round((time.monotonic() - started) * 1000),
    )


# --- The widget: a stored conversation -----------------------------------------------------


async def _history(conversation: Conversation, *, before: Message) -> list[tuple[str, str]]:
    rows = [
        message
        async for message in Message.objects.filter(conversation=conversation, pk__lt=before.pk)
        .exclude(role=Message.Role.SYSTEM)
        .order_by("-pk")[: settings.CHAT_HISTORY_MESSAGES]
    ]
    return [("user" if m.role == Message.Role.CUSTOMER else "assistant", m.text) for m in reversed(rows)]


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
        if conversation.status in (Conversation.Status.WAITING_FOR_AGENT, Conversation.Status.AGENT):
            # A person owns (or is about to own) the conversation: the bot stays silent.
            yield {"type": "queued", "status": conversation.status}
            return
        tools = ToolSession.for_conversation(conversation, message_id=customer_message.pk)
        async for event in assistant_answer(
            knowledge_base=conversation.knowledge_base,
            history=await _history(conversation, before=customer_message),
            question=text,
            chat_model=chat_model,
            tools=tools,
        ):
            if isinstance(event, AnswerDelta):
                yield {"type": "delta", "text": event.text}
                continue
            # A tool step's ticket may have moved the conversation on; an escalation opens a ticket.
            await conversation.arefresh_from_db(fields=["status"])
            await tools.escalated(outcome=event.outcome, question=text)
            if event.escalate and conversation.status != Conversation.Status.WAITING_FOR_AGENT:
                conversation.status = Conversation.Status.WAITING_FOR_AGENT
                await conversation.asave(update_fields=["status", "updated_at"])
            reply = await Message.objects.acreate(
                conversation=conversation, role=Message.Role.ASSISTANT, **event.message_fields()
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


# --- The OpenAI-compatible endpoint: one closed conversation per call ----------------------


def api_visitor_label(key_prefix: str) -> str:
    """What an API call's conversation holds instead of a visitor token hash. It contains ':'
    and so never equals a sha256 hex digest: no widget token can open these conversations."""
    return f"api:{key_prefix}"


def _api_conversation_create(
    *, knowledge_base: KnowledgeBase, key_prefix: str, language: str
) -> Conversation:
    return Conversation.objects.create(
        knowledge_base=knowledge_base,
        visitor_token_hash=api_visitor_label(key_prefix),
        language=language,
        # Nobody can reply to an API client later: a record, never in an agent's queue.
        status=Conversation.Status.CLOSED,
    )


def _api_exchange_store(
    *,
    knowledge_base: KnowledgeBase,
    key_prefix: str,
    question: str,
    answer: Answer,
    conversation: Conversation | None = None,
) -> Conversation:
    """``conversation``: the record a tool step already created (it holds the tool calls)."""
    with transaction.atomic():
        conversation = conversation or _api_conversation_create(
            knowledge_base=knowledge_base, key_prefix=key_prefix, language=answer.language
        )
        Message.objects.bulk_create(
            [
                Message(conversation=conversation, role=Message.Role.CUSTOMER, text=question),
                Message(conversation=conversation, role=Message.Role.ASSISTANT, **answer.message_fields()),
            ]
        )
    return conversation


async def assistant_api_turn(
    *,
    knowledge_base: KnowledgeBase,
    key_prefix: str,
    history: list[tuple[str, str]],
    question: str,
    chat_model: ChatModel,
    sampling: Sampling | None = None,
) -> AsyncIterator[AnswerEvent]:
    """``assistant_answer`` for an API call, stored once the answer is complete (nothing is
    written before the first token; a call the client abandoned leaves no record). The client
    sends the history with every call, so only this call's question and answer are stored.
    A tool step creates the record first, when it needs one to hold its calls."""
    tools = ToolSession.for_api(
        lambda: _api_conversation_create(
            knowledge_base=knowledge_base, key_prefix=key_prefix, language=prompting.detect_language(question)
        )
    )
    async for event in assistant_answer(
        knowledge_base=knowledge_base,
        history=history,
        question=question,
        chat_model=chat_model,
        sampling=sampling,
        tools=tools,
    ):
        if isinstance(event, Answer):
            conversation = await sync_to_async(_api_exchange_store)(
                knowledge_base=knowledge_base,
                key_prefix=key_prefix,
                question=question,
                answer=event,
                conversation=tools.conversation,
            )
            logger.info("api answer", extra={"conversation_id": conversation.pk, "outcome": event.outcome})
        yield event


def conversation_handoff_request(*, conversation: Conversation) -> Message | None:
    """The visitor pressed "talk to a person". Returns the assistant's note, or None when a
    person was already asked for or is there."""
    if conversation.status != Conversation.Status.BOT:
        return None
    conversation.status = Conversation.Status.WAITING_FOR_AGENT
    conversation.save(update_fields=["status", "updated_at"])
    language = conversation.language if conversation.language in prompting.HANDOFF else "en"
    note = Message.objects.create(
        conversation=conversation,
        role=Message.Role.ASSISTANT,
        text=prompting.HANDOFF[language],
        outcome="asked_for_person",
    )
    handoff_requested(conversation=conversation, note=note)  # tool step: the ticket (apps/tools)
    return note


def message_feedback_set(*, conversation: Conversation, message_id: int, feedback: str) -> bool:
    """Thumbs up or down on one of the assistant's answers in this conversation."""
    if feedback not in Message.Feedback.values:
        raise ValueError(f"feedback must be one of {', '.join(Message.Feedback.values)}")
    updated = Message.objects.filter(
        pk=message_id, conversation=conversation, role=Message.Role.ASSISTANT
    ).update(feedback=feedback)
    if updated == 1 and feedback == Message.Feedback.DOWN:
        # Tool step (apps/tools): a ticket for the agent console.
        negative_feedback(conversation=conversation, message_id=message_id)
    return updated == 1
