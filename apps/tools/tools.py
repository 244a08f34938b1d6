"""The tools: plain functions of a conversation and validated arguments, run by the Celery task.

Authorisation lives here, not in a prompt (OWASP LLM06): the customer a tool acts for is the
conversation's verified customer id, set only from an identity the shop's server signed. Arguments
are written by the application from the customer's own words (an order number, an email or phone
offered as proof) and never carry an identity; a model only ever picks a tool's name.

Errors: ``ToolRetry`` for passing faults (the carrier timed out or answered 5xx; the task retries),
``ToolError`` for everything retrying cannot fix. Both end up in the row's ``error``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.conversations.models import Conversation
from apps.knowledge.selectors import kb_search
from apps.orders.anomalies import AnomalyCode
from apps.orders.carriers import CarrierError, CarrierUnavailable
from apps.orders.models import Customer, Order
from apps.orders.selectors import normalize_order_number, order_for_customer
from apps.orders.services import shipment_track
from apps.tickets.models import Ticket
from apps.tickets.services import ticket_open
from apps.tools.models import ToolCall

logger = logging.getLogger(__name__)

ORDER_NUMBER_RE = re.compile(r"^DS\d{8}$")
MAX_PROOFS = 2  # emails and phones tried per lookup: enough for a typo, too few to enumerate


class ToolError(Exception):
    """A tool step that cannot succeed (bad arguments, a carrier answer we cannot use)."""


class ToolArgumentsInvalid(ToolError, ValueError):
    pass


class ToolRetry(Exception):
    """A passing fault worth another attempt (the carrier is slow or down)."""


# --- Arguments ------------------------------------------------------------------------------


def _text(value: Any, *, name: str, max_chars: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ToolArgumentsInvalid(f"{name} must be a string")
    value = value.strip()
    if required and not value:
        raise ToolArgumentsInvalid(f"{name} is required")
    if len(value) > max_chars:
        raise ToolArgumentsInvalid(f"{name} is limited to {max_chars} characters")
    return value


def _texts(value: Any, *, name: str, max_chars: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_PROOFS:
        raise ToolArgumentsInvalid(f"{name} must be a list of at most {MAX_PROOFS} strings")
    return [_text(item, name=name, max_chars=max_chars, required=True) for item in value]


def _order_number(value: Any, *, required: bool) -> str:
    number = normalize_order_number(_text(value, name="order_number", max_chars=32, required=required))
    if number and not ORDER_NUMBER_RE.fullmatch(number):
        raise ToolArgumentsInvalid("order_number is not an order number (DS and 8 digits)")
    return number


def _only(arguments: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(arguments, dict):
        raise ToolArgumentsInvalid("arguments must be an object")
    unknown = set(arguments) - allowed
    if unknown:
        raise ToolArgumentsInvalid(f"unknown arguments: {', '.join(sorted(unknown))}")
    return arguments


@dataclass(frozen=True)
class TrackShipmentArgs:
    order_number: str
    # What the customer offered as proof of ownership (their own words), tried against the order.
    emails: list[str]
    phones: list[str]

    @classmethod
    def parse(cls, arguments: Any) -> TrackShipmentArgs:
        arguments = _only(arguments, {"order_number", "emails", "phones"})
        return cls(
            order_number=_order_number(arguments.get("order_number"), required=True),
            emails=_texts(arguments.get("emails"), name="emails", max_chars=254),
            phones=_texts(arguments.get("phones"), name="phones", max_chars=40),
        )


@dataclass(frozen=True)
class OpenTicketArgs:
    reason: str
    detail: str
    order_number: str = ""
    anomaly_code: str = ""

    @classmethod
    def parse(cls, arguments: Any) -> OpenTicketArgs:
        arguments = _only(arguments, {"reason", "detail", "order_number", "anomaly_code"})
        reason = _text(arguments.get("reason"), name="reason", max_chars=24, required=True)
        if reason not in Ticket.Reason.values:
            raise ToolArgumentsInvalid(f"reason must be one of {', '.join(Ticket.Reason.values)}")
        if reason == Ticket.Reason.ASKED_FOR_PERSON:
            raise ToolArgumentsInvalid("a request for a person is the handoff_to_human tool")
        parsed = cls(
            reason=reason,
            detail=_text(arguments.get("detail"), name="detail", max_chars=2000),
            order_number=_order_number(arguments.get("order_number"), required=False),
            anomaly_code=_text(arguments.get("anomaly_code"), name="anomaly_code", max_chars=32),
        )
        if reason == Ticket.Reason.ANOMALY:
            if not parsed.order_number or parsed.anomaly_code not in {code.value for code in AnomalyCode}:
                raise ToolArgumentsInvalid("an anomaly ticket needs order_number and a known anomaly_code")
        elif parsed.order_number or parsed.anomaly_code:
            raise ToolArgumentsInvalid("only anomaly tickets name an order")
        return parsed


@dataclass(frozen=True)
class HandoffArgs:
    detail: str

    @classmethod
    def parse(cls, arguments: Any) -> HandoffArgs:
        arguments = _only(arguments, {"detail"})
        return cls(detail=_text(arguments.get("detail"), name="detail", max_chars=2000))


@dataclass(frozen=True)
class SearchArgs:
    query: str

    @classmethod
    def parse(cls, arguments: Any) -> SearchArgs:
        arguments = _only(arguments, {"query"})
        return cls(query=_text(arguments.get("query"), name="query", max_chars=500, required=True))


# --- The tools ------------------------------------------------------------------------------


def track_shipment(conversation: Conversation, arguments: TrackShipmentArgs) -> dict[str, Any]:
    """The order's shipments as the carrier reports them now, with their anomalies, or
    ``{"authorised": False}`` and nothing else when the conversation cannot show it owns the order
    (the same for an order that does not exist). The carrier is asked only after that check."""
    order = _owned_order(conversation, arguments)
    if order is None:
        logger.warning(
            "order lookup refused; nothing returned",
            extra={
                "conversation_id": conversation.pk,
                "order_number_given": arguments.order_number,
                "verified": bool(conversation.verified_customer_id),
                "proofs_offered": len(arguments.emails) + len(arguments.phones),
            },
        )
        return {"authorised": False, "order_number": arguments.order_number}
    shipments = []
    for shipment in order.shipments.order_by("created_at"):
        try:
            tracked = shipment_track(shipment=shipment)
        except CarrierUnavailable as exc:  # timeouts included
            raise ToolRetry(f"{type(exc).__name__}: {exc}") from exc
        except CarrierError as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc
        latest = tracked.tracking.latest_event
        shipments.append(
            {
                "carrier": shipment.carrier_code,
                "tracking_number": shipment.tracking_number,
                "status": tracked.tracking.status.value,
                "promised_delivery_date": (
                    shipment.promised_delivery_date.isoformat() if shipment.promised_delivery_date else None
                ),
                "last_scan": (
                    {
                        "time": latest.time.isoformat(),
                        "place": latest.place,
                        "description": latest.description,
                    }
                    if latest
                    else None
                ),
                "checked_at": tracked.checked_at.isoformat(),
                "anomalies": [{"code": a.code.value, "detail": a.detail} for a in tracked.anomalies],
            }
        )
    return {
        "authorised": True,
        "order_number": order.number,
        "order_status": order.status,
        "shipments": shipments,
        # Flat, so a later step can check "this conversation saw this anomaly" with one query.
        "anomaly_codes": sorted({a["code"] for s in shipments for a in s["anomalies"]}),
    }


def _owned_order(conversation: Conversation, arguments: TrackShipmentArgs) -> Order | None:
    attempts = [("", "")] + [(email, "") for email in arguments.emails] + [("", p) for p in arguments.phones]
    for email, phone in attempts:
        order = order_for_customer(
            order_number=arguments.order_number,
            verified_customer_id=conversation.verified_customer_id,
            email=email,
            phone=phone,
        )
        if order is not None:
            return order
    return None


def open_ticket(conversation: Conversation, arguments: OpenTicketArgs) -> dict[str, Any]:
    """A ticket for a problem (one per problem: ``ticket_open`` is idempotent on its dedupe key)."""
    order = None
    customer = _verified_customer(conversation)
    if arguments.reason == Ticket.Reason.ANOMALY:
        # Only for an anomaly this conversation's own, authorised lookup found.
        seen = ToolCall.objects.filter(
            conversation=conversation,
            tool=ToolCall.Tool.TRACK_SHIPMENT,
            status=ToolCall.Status.SUCCEEDED,
            result__authorised=True,
            result__order_number=arguments.order_number,
            result__anomaly_codes__contains=[arguments.anomaly_code],
        ).exists()
        if not seen:
            raise ToolError("no authorised lookup in this conversation found that anomaly")
        order = Order.objects.select_related("customer").get(number=arguments.order_number)
        customer = order.customer
        dedupe_key = f"anomaly:{order.number}:{arguments.anomaly_code}"
    else:
        dedupe_key = f"{arguments.reason}:conversation:{conversation.pk}"
    ticket, created = ticket_open(
        reason=arguments.reason,
        dedupe_key=dedupe_key,
        conversation=conversation,
        customer=customer,
        order=order,
        detail=arguments.detail,
    )
    return {"ticket": ticket.number, "created": created, "reason": arguments.reason}


def handoff_to_human(conversation: Conversation, arguments: HandoffArgs) -> dict[str, Any]:
    """A ticket asking for a person (one per conversation) and the conversation waiting for an agent."""
    with transaction.atomic():
        ticket, created = ticket_open(
            reason=Ticket.Reason.ASKED_FOR_PERSON,
            dedupe_key=f"{Ticket.Reason.ASKED_FOR_PERSON}:conversation:{conversation.pk}",
            conversation=conversation,
            customer=_verified_customer(conversation),
            detail=arguments.detail,
        )
        # ticket_open moves a new ticket's conversation; a reopened one needs it too.
        Conversation.objects.filter(pk=conversation.pk, status=Conversation.Status.BOT).update(
            status=Conversation.Status.WAITING_FOR_AGENT
        )
    status = Conversation.objects.values_list("status", flat=True).get(pk=conversation.pk)
    return {"ticket": ticket.number, "created": created, "conversation_status": status}


def search_knowledge_base(conversation: Conversation, arguments: SearchArgs) -> dict[str, Any]:
    """The passages of the conversation's own knowledge base for ``query``."""
    hits = kb_search(
        knowledge_base=conversation.knowledge_base, query=arguments.query, k=settings.CHAT_PASSAGES
    )
    return {
        "passages": [
            {
                "chunk_id": hit.chunk_id,
                "document": hit.filename,
                "heading_path": hit.heading_path,
                "similarity": hit.similarity,
                "quote": hit.text[:300],
            }
            for hit in hits
        ]
    }


def _verified_customer(conversation: Conversation) -> Customer | None:
    if not conversation.verified_customer_id:
        return None
    return Customer.objects.filter(external_id=conversation.verified_customer_id).first()


@dataclass(frozen=True)
class ToolSpec:
    parse: Callable[[Any], Any]
    run: Callable[[Conversation, Any], dict[str, Any]]


TOOLS: dict[str, ToolSpec] = {
    ToolCall.Tool.TRACK_SHIPMENT: ToolSpec(TrackShipmentArgs.parse, track_shipment),
    ToolCall.Tool.OPEN_TICKET: ToolSpec(OpenTicketArgs.parse, open_ticket),
    ToolCall.Tool.HANDOFF_TO_HUMAN: ToolSpec(HandoffArgs.parse, handoff_to_human),
    ToolCall.Tool.SEARCH_KNOWLEDGE_BASE: ToolSpec(SearchArgs.parse, search_knowledge_base),
}


def arguments_parse(tool: str, arguments: Any) -> Any:
    spec = TOOLS.get(tool)
    if spec is None:
        raise ToolArgumentsInvalid(f"unknown tool {tool!r}")
    return spec.parse(arguments)


def follow_ups(call: ToolCall) -> list[tuple[str, dict[str, Any], str]]:
    """Steps the application takes after ``call`` succeeded: (tool, arguments, idempotency key).
    An anomaly an authorised lookup found opens its ticket here, in the worker, so it is opened
    even when the chat turn stopped waiting for a slow carrier."""
    if call.tool != ToolCall.Tool.TRACK_SHIPMENT or not (call.result or {}).get("authorised"):
        return []
    steps: dict[str, tuple[str, dict[str, Any], str]] = {}
    for shipment in call.result["shipments"]:
        for anomaly in shipment["anomalies"]:
            if anomaly["code"] in steps:
                continue  # one ticket per anomaly per order, however many parcels show it
            arguments = {
                "reason": Ticket.Reason.ANOMALY.value,
                "order_number": call.result["order_number"],
                "anomaly_code": anomaly["code"],
                "detail": f"{shipment['carrier']} {shipment['tracking_number']}: {anomaly['detail']}",
            }
            key = f"call:{call.pk}:ticket:{anomaly['code']}"
            steps[anomaly["code"]] = (ToolCall.Tool.OPEN_TICKET.value, arguments, key)
    return list(steps.values())
