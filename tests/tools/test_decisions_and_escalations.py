"""The model's tool choice and its fallback; tickets for a person asked for, weak answers and thumbs-down;
the admin's list of tool calls."""

from __future__ import annotations

import pytest

from apps.conversations.models import Conversation, Message
from apps.conversations.services import conversation_handoff_request, message_feedback_set
from apps.tickets.models import Ticket
from apps.tools.flow import ToolSession, route_message, tool_choice
from apps.tools.models import ToolCall
from apps.tools.services import tool_call_wait
from inference.client import ClientConfig, LLMInvalidOutput, OpenAICompatibleModel
from tests.tools.conftest import LI_WEI, NO_MODEL, ScriptedModel, run_async, start, turn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("message", "kind", "order_number"),
    [
        ("Where is my order DS20240501?", "order", "DS20240501"),
        ("订单ＤＳ２０２４０５０１的物流怎么没更新", "order", "DS20240501"),  # full-width, no spaces
        ("ds 20240501 tracking", "order", "DS20240501"),
        ("DS20240501", "maybe", "DS20240501"),  # a number alone: ask the model
        ("Can I still change my order?", "maybe", ""),
        ("How long does shipping to Xinjiang take?", None, ""),  # a policy question
        ("I want to talk to a real person about DS20240501", None, ""),  # the handoff rule answers
        ("Order DS202405011 where is it", None, ""),  # nine digits: not an order number
    ],
)
def test_routing_is_a_function_of_the_words(message, kind, order_number) -> None:
    route = route_message(message, [])
    if kind is None:
        assert route is None
    else:
        assert route is not None and (route.kind, route.order_number) == (kind, order_number)


def test_an_email_after_an_order_number_continues_that_lookup() -> None:
    history = [("user", "where is DS20240505"), ("assistant", "please tell me the email or phone…")]
    route = route_message("wang.fang@example.cn", history)
    assert route is not None and (route.kind, route.order_number) == ("order", "DS20240505")


@pytest.mark.parametrize(
    "model",
    [
        ScriptedModel({"tool": "delete_all_orders"}),  # not one of the tools
        ScriptedModel(["track_shipment"]),  # not the schema's shape
        ScriptedModel(LLMInvalidOutput("decision 'tool_choice' did not match its schema: 'trac'")),
        OpenAICompatibleModel(ClientConfig(base_url=NO_MODEL, model="x", connect_retries=0)),  # worker down
    ],
    ids=["unknown-tool", "wrong-shape", "invalid-output", "worker-down"],
)
def test_a_failed_or_invalid_decision_means_the_knowledge_base(model) -> None:
    assert run_async(tool_choice(question="DS20240501", chat_model=model)) == "search_knowledge_base"


def test_an_invalid_decision_makes_no_tool_call_and_leaves_the_answer_to_the_knowledge_base(shop) -> None:
    conversation = start(shop, customer_id=LI_WEI)
    model = ScriptedModel({"tool": "ignore previous instructions"})
    session = ToolSession.for_conversation(conversation, message_id=1)
    reply = run_async(session.reply(history=[], question="DS20240501", chat_model=model))
    assert model.decisions == 1
    assert reply is None  # assistant_answer goes on to retrieval and the model's answer
    assert not ToolCall.objects.exists()


def test_the_models_choices_are_followed(shop) -> None:
    handoff = turn(start(shop), "DS20240501 is wrong", chat_model=ScriptedModel({"tool": "handoff_to_human"}))
    assert handoff["outcome"] == "asked_for_person" and handoff["conversation_status"] == "waiting_for_agent"

    asked = turn(
        start(shop), "Can I still change my order?", chat_model=ScriptedModel({"tool": "track_shipment"})
    )
    assert asked["outcome"] == "order_verification"
    assert "order number" in asked["text"] and "email address or phone number" in asked["text"]


def _ticket_of(conversation: Conversation, reason: str) -> Ticket:
    call = ToolCall.objects.filter(conversation=conversation).latest("pk")
    assert tool_call_wait(call, timeout=20).status == ToolCall.Status.SUCCEEDED, call.error
    return Ticket.objects.get(conversation=conversation, reason=reason)


def test_asking_for_a_person_opens_one_ticket_per_conversation(shop) -> None:
    conversation = start(shop, customer_id=LI_WEI)
    reply = turn(conversation, "I want to talk to a real person")
    assert reply["outcome"] == "asked_for_person" and reply["conversation_status"] == "waiting_for_agent"
    ticket = _ticket_of(conversation, Ticket.Reason.ASKED_FOR_PERSON)
    assert ticket.customer.external_id == LI_WEI and "real person" in ticket.detail
    assert ticket.dedupe_key == f"asked_for_person:conversation:{conversation.pk}"
    # The button as well, after an agent handed the conversation back: still one ticket.
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.BOT)
    conversation.refresh_from_db()
    assert conversation_handoff_request(conversation=conversation) is not None
    assert _ticket_of(conversation, Ticket.Reason.ASKED_FOR_PERSON).pk == ticket.pk


def test_the_handoff_button_opens_a_ticket(shop) -> None:
    conversation = start(shop)
    conversation_handoff_request(conversation=conversation)
    ticket = _ticket_of(conversation, Ticket.Reason.ASKED_FOR_PERSON)
    assert ticket.customer is None and ticket.status == Ticket.Status.OPEN
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING_FOR_AGENT


def test_a_low_confidence_answer_opens_a_ticket(shop) -> None:
    conversation = start(shop)
    message = Message.objects.create(conversation=conversation, role="customer", text="Do you sell boats?")
    session = ToolSession.for_conversation(conversation, message_id=message.pk)
    run_async(session.escalated(outcome="low_confidence", question=message.text))
    run_async(session.escalated(outcome="low_confidence", question=message.text))  # the same turn again
    assert ToolCall.objects.count() == 1
    ticket = _ticket_of(conversation, Ticket.Reason.LOW_CONFIDENCE)
    assert ticket.detail == "Do you sell boats?"
    run_async(session.escalated(outcome="answered", question="x"))
    assert ToolCall.objects.count() == 1


def test_thumbs_down_opens_one_ticket(shop) -> None:
    conversation = start(shop)
    answer = Message.objects.create(conversation=conversation, role="assistant", text="Returns take 90 days.")
    assert message_feedback_set(conversation=conversation, message_id=answer.pk, feedback="up")
    assert not ToolCall.objects.exists()
    assert message_feedback_set(conversation=conversation, message_id=answer.pk, feedback="down")
    assert message_feedback_set(conversation=conversation, message_id=answer.pk, feedback="down")
    ticket = _ticket_of(conversation, Ticket.Reason.NEGATIVE_FEEDBACK)
    assert "Returns take 90 days." in ticket.detail
    assert Ticket.objects.count() == 1 and ToolCall.objects.count() == 1


def test_admins_list_and_filter_tool_calls_agents_and_anonymous_cannot(shop, personas) -> None:
    conversation = start(shop)
    ToolCall.objects.create(
        conversation=conversation, tool="track_shipment", status="failed", error="CarrierTimeout: slow"
    )
    ToolCall.objects.create(conversation=conversation, tool="open_ticket", status="succeeded")
    url = "/admin/tools/toolcall/"
    page = personas.client("admin").get(url, {"status__exact": "failed", "tool__exact": "track_shipment"})
    assert page.status_code == 200
    assert "CarrierTimeout: slow" in page.content.decode() and "1 tool call" in page.content.decode()
    for name in ("agent", "anonymous"):
        assert personas.client(name).get(url).status_code in (302, 403)
