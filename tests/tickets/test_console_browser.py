"""A real handoff in two browsers against the real stack: the customer asks for a person in the widget,
the agent sees the ticket appear in the console without a reload, replies, the customer gets the reply,
the bot stays silent while the agent owns the conversation, the agent sees the customer's next message
live and resolves the ticket."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from django.apps import apps

from apps.accounts.roles import Role
from apps.accounts.services import staff_user_ensure
from apps.conversations.models import Conversation, Message
from apps.tickets.models import Ticket
from tests.knowledge.helpers import make_kb
from tests.tickets.helpers import console_signed_in, widget_opened

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AGENT_PASSWORD = "agent-password-for-the-browser-test"
REPLY = "Hi, this is Bob from the shop. Your parcel left our warehouse today."


def _ticket_for(conversation: Conversation, *, wait_s: float) -> Ticket:
    """The ticket the handoff's tool step (run by the Celery worker) opened."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        ticket = Ticket.objects.filter(conversation=conversation).first()
        if ticket is not None:
            return ticket
        time.sleep(0.5)
    raise AssertionError(f"the handoff opened no ticket within {wait_s:.0f} s")


def _widget_messages(base_url: str, conversation_id: int, token: str) -> list[dict]:
    request = urllib.request.Request(
        f"{base_url}/api/widget/conversations/{conversation_id}/messages/",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["messages"]


def _visitor_token(page) -> str:
    """The widget keeps its conversation's bearer token in the shop page's localStorage."""
    stored = page.evaluate("() => Object.values(localStorage)")
    return next(json.loads(value)["token"] for value in stored if '"token"' in value)


def test_customer_asks_for_a_person_and_an_agent_answers_live(
    web_server, browser, celery_worker, tmp_path
) -> None:
    make_kb()
    staff_user_ensure(username="bob-agent", role=Role.AGENT, password=AGENT_PASSWORD)
    errors: list[str] = []

    # The agent signs in and watches the (empty) queue.
    agent_context, console = console_signed_in(browser, web_server, "bob-agent", AGENT_PASSWORD, errors)

    # The customer asks for a person in the widget on the demo shop page.
    customer_context, shop = widget_opened(browser, web_server, "test-shop", errors)
    shop.click(".person")
    shop.wait_for_selector("text=member of our team")
    conversation = Conversation.objects.get()
    ticket = _ticket_for(conversation, wait_s=60)

    # The ticket appears in the agent's queue without a reload, with a toast.
    console.wait_for_selector(f'#queue tr[data-number="{ticket.number}"]', timeout=20_000)
    console.wait_for_selector(f'.toast:has-text("{ticket.number}")', timeout=5_000)
    assert console.evaluate("() => window.sameDocument") is True
    assert console.inner_text('[data-count="active"]') == "1"

    # The agent opens it, sees the conversation, and replies.
    console.click(f'#queue a:has-text("{ticket.number}")')
    console.wait_for_selector("#transcript")
    assert "member of our team" in console.inner_text("#transcript")
    if apps.is_installed("apps.tools"):  # the handoff is a tool step, listed with its result
        assert "handoff_to_human" in console.inner_text("#tool-calls")
    console.fill("#reply-text", REPLY)
    console.click("#reply-form button[type=submit]")
    console.wait_for_selector("text=Reply sent")
    assert REPLY in console.inner_text("#transcript")

    # The reply appears live in the customer's open widget, labelled as a person, and is stored once.
    reply = shop.wait_for_selector(".msg.agent", timeout=15_000)
    assert REPLY in reply.inner_text() and "Team member" in reply.inner_text()
    token = _visitor_token(shop)
    messages = _widget_messages(web_server, conversation.pk, token)
    assert [m["text"] for m in messages if m["role"] == "agent"] == [REPLY]

    # The customer writes again: the bot stays silent, and the agent sees the message live.
    assistant_before = Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT).count()
    shop.fill("textarea", "Thank you! Will it arrive before Friday?")
    shop.press("textarea", "Enter")
    console.wait_for_selector('#transcript .msg.customer:has-text("before Friday")', timeout=20_000)
    time.sleep(2)
    assert (
        Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT).count()
        == assistant_before
    )

    # The agent resolves the ticket; the assistant answers the customer again from now on.
    console.click("#status-resolved")
    console.wait_for_selector("text=The ticket is resolved now.")
    ticket.refresh_from_db()
    conversation.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED
    assert ticket.assignee.username == "bob-agent"
    assert ticket.first_response_at is not None
    assert conversation.status == Conversation.Status.BOT
    console.screenshot(path=str(tmp_path / "console-ticket.png"))
    assert errors == []
    agent_context.close()
    customer_context.close()
