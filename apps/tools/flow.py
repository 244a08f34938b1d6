"""Tool steps inside a chat turn: the application decides, the model helps.

- **Clear cases follow a fixed flow.** An order number (``DS`` and 8 digits) together with a shipping
  question (English or Chinese cue words), or an email/phone sent after an order number was mentioned:
  ``track_shipment`` (ownership is checked inside the tool, before the carrier is asked) → anomalies →
  ``open_ticket`` per anomaly (a follow-up the worker starts) → a templated reply in the customer's
  language with the status, the last scan and the ticket number.
- **Unclear cases** (an order number without a shipping cue, "my order" without a number) let the model
  pick a tool name through constrained output (``decide`` with an enum). A failed or invalid decision
  means "answer from the knowledge base", so a small or broken model can only cost a better answer.
- The model never writes a tool's arguments: they come from the customer's own words, and the identity
  a tool acts for comes from the conversation.

``ToolSession`` is what ``apps.conversations.services`` hands in: ``reply`` before retrieval, and
``escalated`` after an answer that offered a person (a ticket for the agent console).
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from apps.conversations import prompting
from apps.conversations.models import Conversation, Message
from apps.tickets.models import Ticket
from apps.tools import replies
from apps.tools.models import ToolCall
from apps.tools.services import tool_call_run, tool_call_wait_async
from apps.tools.tools import MAX_PROOFS
from inference.client import ChatModel, LLMError

logger = logging.getLogger(__name__)

ORDER_NUMBER_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])DS\s?(\d{8})(?![0-9])", re.IGNORECASE)
EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE_IN_TEXT = re.compile(r"(?<!\w)(?:\+|00)?\d[\d ().-]{5,}\d(?!\w)")
DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$")
MIN_PHONE_DIGITS = 7

# A question about where a parcel is; matched on the lower-cased message.
SHIPPING_CUES = (
    "where is", "where's", "wheres", "track", "ship", "deliver", "arrive", "arrival", "parcel", "package",
    "courier", "carrier", "updated", "update", "stuck", "moving", "status", "late", "lost", "dispatch",
    "物流", "快递", "到哪", "在哪", "发货", "配送", "派送", "运输", "追踪", "跟踪", "单号", "没更新",
    "更新", "包裹", "送达", "到货", "签收", "进度", "状态", "寄到", "收到",
)  # fmt: skip
# "My order" without a number: probably a lookup, but not clear-cut.
MY_ORDER_CUES = (
    "my order", "my parcel", "my package", "my delivery", "my shipment",
    "我的订单", "我的快递", "我的包裹", "我的货", "我买的",
)  # fmt: skip
HISTORY_TURNS_FOR_ORDERS = 6  # earlier messages searched for an order number or a proof

TOOL_CHOICE_TOOLS = (
    ToolCall.Tool.TRACK_SHIPMENT.value,
    ToolCall.Tool.HANDOFF_TO_HUMAN.value,
    ToolCall.Tool.SEARCH_KNOWLEDGE_BASE.value,
)
TOOL_CHOICE_SCHEMA = {
    "type": "object",
    "properties": {"tool": {"type": "string", "enum": list(TOOL_CHOICE_TOOLS)}},
    "required": ["tool"],
    "additionalProperties": False,
}
# Tiny on purpose: the 0.5B CPU model reads it in well under a second.
TOOL_CHOICE_INSTRUCTION = (
    "Pick one tool for the shop customer's message.\n"
    "track_shipment: where their order or parcel is.\n"
    "handoff_to_human: they want a person.\n"
    "search_knowledge_base: anything else."
)
TICKET_WAIT_MIN_SECONDS = 3.0  # an anomaly ticket is database work only


@dataclass(frozen=True)
class ToolReply:
    text: str
    # "order_status", "order_verification", "tool_pending", "tool_failed" or "asked_for_person".
    outcome: str
    language: str
    escalate: bool = False


@dataclass(frozen=True)
class Route:
    kind: str  # "order" (clear-cut lookup) or "maybe" (ask the model)
    order_number: str = ""


def _normalized(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def order_numbers(text: str) -> list[str]:
    return [f"DS{digits}" for digits in ORDER_NUMBER_IN_TEXT.findall(_normalized(text))]


def proofs(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """Emails and phone numbers the customer wrote, newest text first, at most ``MAX_PROOFS`` each."""
    emails: list[str] = []
    phones: list[str] = []
    for text in texts:
        text = _normalized(text)
        for email in EMAIL_IN_TEXT.findall(text):
            if email.lower() not in (e.lower() for e in emails):
                emails.append(email)
        rest = ORDER_NUMBER_IN_TEXT.sub(" ", EMAIL_IN_TEXT.sub(" ", text))
        for phone in PHONE_IN_TEXT.findall(rest):
            phone = phone.strip()
            if len(re.sub(r"\D", "", phone)) >= MIN_PHONE_DIGITS and not DATE_LIKE.match(phone):
                if phone not in phones:
                    phones.append(phone)
    return emails[:MAX_PROOFS], phones[:MAX_PROOFS]


def _has(text: str, cues: Sequence[str]) -> bool:
    lowered = _normalized(text).lower()
    return any(cue in lowered for cue in cues)


def route_message(question: str, history: Sequence[tuple[str, str]]) -> Route | None:
    """Which tool flow the message needs, if any (a pure function of the words)."""
    if prompting.wants_person(question):
        return None  # the assistant's own rule hands over
    numbers = order_numbers(question)
    if numbers and _has(question, SHIPPING_CUES):
        return Route("order", numbers[0])
    if not numbers and any(proofs([question])):
        # "li.wei@example.cn" after "where is DS20240501?": the proof for the order mentioned before.
        for role, text in reversed(history[-HISTORY_TURNS_FOR_ORDERS:]):
            earlier = order_numbers(text) if role == "user" else []
            if earlier:
                return Route("order", earlier[0])
    if numbers:
        return Route("maybe", numbers[0])
    if _has(question, MY_ORDER_CUES):
        return Route("maybe")
    return None


async def tool_choice(*, question: str, chat_model: ChatModel) -> str:
    """The model's pick among ``TOOL_CHOICE_TOOLS``; ``search_knowledge_base`` when it fails or
    answers anything else (another endpoint may not constrain its output)."""
    fallback = ToolCall.Tool.SEARCH_KNOWLEDGE_BASE.value
    if settings.TOOLS_DECIDE_MAX_TOKENS <= 0:
        return fallback
    messages = [
        {"role": "system", "content": TOOL_CHOICE_INSTRUCTION},
        {"role": "user", "content": question[:300]},
    ]
    try:
        decision: Any = await chat_model.decide(
            messages,
            schema=TOOL_CHOICE_SCHEMA,
            name="tool_choice",
            max_tokens=settings.TOOLS_DECIDE_MAX_TOKENS,
        )
    except LLMError as exc:
        logger.warning("tool choice failed; answering from the knowledge base", extra={"error": str(exc)})
        return fallback
    tool = decision.get("tool") if isinstance(decision, dict) else None
    if tool not in TOOL_CHOICE_TOOLS:
        logger.warning(
            "invalid tool choice; answering from the knowledge base", extra={"decision": str(decision)[:200]}
        )
        return fallback
    logger.info("tool chosen by the model", extra={"tool": tool})
    return tool


@dataclass
class ToolSession:
    """Where a turn's tool steps run. The conversation carries the identity; for the OpenAI-compatible
    endpoint it is created only when a step needs it (``conversation_factory``)."""

    verified_customer_id: str = ""
    # The customer message that started the turn: one set of tool calls per message.
    message_id: int | None = None
    # Widget conversations open tickets when a person is offered; API records never enter a queue.
    escalations: bool = True
    conversation: Conversation | None = None
    conversation_factory: Callable[[], Conversation] | None = None

    @classmethod
    def for_conversation(cls, conversation: Conversation, *, message_id: int) -> ToolSession:
        return cls(
            verified_customer_id=conversation.verified_customer_id,
            message_id=message_id,
            conversation=conversation,
        )

    @classmethod
    def for_api(cls, conversation_factory: Callable[[], Conversation]) -> ToolSession:
        return cls(escalations=False, conversation_factory=conversation_factory)

    def _key(self, name: str) -> str | None:
        return f"msg:{self.message_id}:{name}" if self.message_id else None

    async def _conversation(self) -> Conversation:
        if self.conversation is None:
            assert self.conversation_factory is not None
            self.conversation = await sync_to_async(self.conversation_factory)()
        return self.conversation

    async def reply(
        self, *, history: Sequence[tuple[str, str]], question: str, chat_model: ChatModel
    ) -> ToolReply | None:
        """The answer when the message needs a tool step; None for the knowledge base."""
        route = route_message(question, history)
        if route is None:
            return None
        language = prompting.detect_language(question)
        if route.kind == "order":
            return await self._order_reply(route.order_number, question, history, language)
        tool = await tool_choice(question=question, chat_model=chat_model)
        if tool == ToolCall.Tool.TRACK_SHIPMENT:
            if route.order_number:
                return await self._order_reply(route.order_number, question, history, language)
            name = "ask_order_number" if self.verified_customer_id else "ask_order_number_and_proof"
            return ToolReply(replies.text(name, language), "order_verification", language)
        if tool == ToolCall.Tool.HANDOFF_TO_HUMAN:
            return ToolReply(prompting.HANDOFF[language], "asked_for_person", language, escalate=True)
        return None

    async def _order_reply(
        self, number: str, question: str, history: Sequence[tuple[str, str]], language: str
    ) -> ToolReply:
        started = time.monotonic()
        earlier = [text for role, text in reversed(history[-HISTORY_TURNS_FOR_ORDERS:]) if role == "user"]
        emails, phones = proofs([question, *earlier])
        conversation = await self._conversation()
        call = await sync_to_async(tool_call_run)(
            conversation=conversation,
            tool=ToolCall.Tool.TRACK_SHIPMENT,
            arguments={"order_number": number, "emails": emails, "phones": phones},
            idempotency_key=self._key("track_shipment"),
        )
        call = await tool_call_wait_async(call.pk, timeout=settings.TOOLS_WAIT_SECONDS)
        if not call.done:
            logger.warning("carrier lookup still running; told the customer", extra={"tool_call_id": call.pk})
            return ToolReply(replies.text("slow", language, number=number), "tool_pending", language)
        if call.status == ToolCall.Status.FAILED:
            return ToolReply(replies.text("failed", language, number=number), "tool_failed", language)
        result = call.result or {}
        if not result.get("authorised"):
            logger.warning(
                "order not shown: ownership not proven",
                extra={
                    "conversation_id": conversation.pk,
                    "order_number_given": number,
                    "tool_call_id": call.pk,
                },
            )
            if emails or phones:
                name = "refused"
            else:
                name = "not_on_account" if self.verified_customer_id else "ask_proof"
            return ToolReply(replies.text(name, language, number=number), "order_verification", language)
        remaining = settings.TOOLS_WAIT_SECONDS - (time.monotonic() - started)
        tickets = await _anomaly_tickets(call, timeout=max(remaining, TICKET_WAIT_MIN_SECONDS))
        return ToolReply(replies.order_status_reply(result, tickets, language), "order_status", language)

    async def escalated(self, *, outcome: str, question: str) -> None:
        """After an answer that offered a person: a ticket for the agent console (not waited for)."""
        if not self.escalations or self.conversation is None:
            return
        if outcome == "asked_for_person":
            tool, arguments = ToolCall.Tool.HANDOFF_TO_HUMAN, {"detail": question[:2000]}
        elif outcome == "low_confidence":
            arguments = {"reason": Ticket.Reason.LOW_CONFIDENCE.value, "detail": question[:2000]}
            tool = ToolCall.Tool.OPEN_TICKET
        else:
            return
        await sync_to_async(tool_call_run)(
            conversation=self.conversation, tool=tool, arguments=arguments, idempotency_key=self._key(tool)
        )


async def _anomaly_tickets(call: ToolCall, *, timeout: float) -> dict[str, str | None]:
    """Anomaly code → ticket number of the follow-ups the worker started (None while still opening)."""
    tickets: dict[str, str | None] = {}
    deadline = time.monotonic() + timeout
    async for step in ToolCall.objects.filter(parent_id=call.pk, tool=ToolCall.Tool.OPEN_TICKET).order_by(
        "pk"
    ):
        done = await tool_call_wait_async(step.pk, timeout=max(0.0, deadline - time.monotonic()))
        number = (done.result or {}).get("ticket") if done.status == ToolCall.Status.SUCCEEDED else None
        tickets[step.arguments["anomaly_code"]] = number
    return tickets


def handoff_requested(*, conversation: Conversation, note: Message) -> ToolCall:
    """The visitor pressed "talk to a person": the ticket the agent console shows."""
    return tool_call_run(
        conversation=conversation,
        tool=ToolCall.Tool.HANDOFF_TO_HUMAN,
        arguments={"detail": 'the customer pressed "talk to a person"'},
        idempotency_key=f"msg:{note.pk}:handoff_to_human",
    )


def negative_feedback(*, conversation: Conversation, message_id: int) -> ToolCall:
    """A thumbs-down on an answer: one ticket per conversation (the answer is in the detail)."""
    answer = (
        Message.objects.filter(pk=message_id, conversation=conversation)
        .values_list("text", flat=True)
        .first()
    )
    return tool_call_run(
        conversation=conversation,
        tool=ToolCall.Tool.OPEN_TICKET,
        arguments={
            "reason": Ticket.Reason.NEGATIVE_FEEDBACK.value,
            "detail": f"thumbs down on answer {message_id}: {(answer or '')[:1500]}",
        },
        idempotency_key=f"feedback:{message_id}",
    )
