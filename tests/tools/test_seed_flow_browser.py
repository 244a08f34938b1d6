"""The seed conversation as the customer and the agent see it, in two browsers against the real stack
(web server, Celery worker, sandbox carrier process, PostgreSQL, Redis): on the demo shop page the
customer says their order's tracking is stuck, proves the order is theirs with its email, and gets the
carrier's status and a ticket number; the ticket appears in the agent's open console without a reload,
with the conversation and the tool steps that opened it."""

from __future__ import annotations

import re

import pytest

from apps.accounts.roles import Role
from apps.accounts.services import staff_user_ensure
from apps.tickets.models import Ticket
from apps.tools.models import ToolCall
from tests.tickets.helpers import console_signed_in, widget_opened

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AGENT_PASSWORD = "agent-password-for-the-seed-flow"
SEED = "My order DS20240501 shows shipped, but tracking hasn't updated for 3 days"


def test_the_seed_flow_from_the_demo_page_to_the_agent_console(shop, web_server, browser, tmp_path) -> None:
    staff_user_ensure(username="ana-agent", role=Role.AGENT, password=AGENT_PASSWORD)
    errors: list[str] = []

    agent_context, console = console_signed_in(browser, web_server, "ana-agent", AGENT_PASSWORD, errors)

    customer_context, page = widget_opened(browser, web_server, shop.slug, errors)
    page.fill("textarea", SEED)
    page.press("textarea", "Enter")
    # Nothing about the order before it is proven to be the customer's.
    ask = page.wait_for_selector('.msg.assistant:has-text("email address or phone number")', timeout=30_000)
    assert "DS20240501" in ask.inner_text() and "SF1402938475610" not in page.inner_text("body")
    [refused] = ToolCall.objects.all()  # the lookup is recorded, and it read nothing
    assert refused.result == {"authorised": False, "order_number": "DS20240501"}

    page.fill("textarea", "It's li.wei@example.cn")
    page.press("textarea", "Enter")
    reply = page.wait_for_selector('.msg.assistant:has-text("Last scan")', timeout=45_000).inner_text()
    ticket = Ticket.objects.get()
    assert re.fullmatch(r"T-\d{6}", ticket.number) and ticket.number in reply
    assert "SF1402938475610" in reply and "76 hours" in reply
    assert ticket.reason == Ticket.Reason.ANOMALY and ticket.order.number == "DS20240501"
    assert [(c.tool, c.status) for c in ToolCall.objects.exclude(pk=refused.pk).order_by("pk")] == [
        ("track_shipment", "succeeded"),
        ("open_ticket", "succeeded"),
    ]

    # The agent's queue shows the ticket live; its page has the conversation and the tool steps.
    console.wait_for_selector(f'#queue tr[data-number="{ticket.number}"]', timeout=20_000)
    assert console.evaluate("() => window.sameDocument") is True
    console.click(f'#queue a:has-text("{ticket.number}")')
    console.wait_for_selector("#transcript")
    transcript = console.inner_text("#transcript")
    assert "hasn't updated for 3 days" in transcript and "li.wei@example.cn" in transcript
    assert ticket.number in transcript
    tool_calls = console.inner_text("#tool-calls")
    assert "track_shipment" in tool_calls and "open_ticket" in tool_calls
    console.screenshot(path=str(tmp_path / "seed-ticket.png"))
    page.screenshot(path=str(tmp_path / "seed-widget.png"))
    assert errors == []
    agent_context.close()
    customer_context.close()
