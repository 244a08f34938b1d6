"""The ticket page and its actions through HTTP: take, assign, priority, note, reply, resolve, hand
back; a refused change shows why and writes nothing; the page's poll endpoint."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.roles import Role
from apps.accounts.services import staff_user_ensure
from apps.conversations.models import Conversation, Message
from apps.tickets.models import Ticket, TicketEvent

pytestmark = pytest.mark.django_db


def _act(client, ticket: Ticket, **data: str):
    """Post one action, follow the redirect to the ticket page, and return the messages shown there."""
    response = client.post(reverse("console-ticket-action", args=[ticket.number]), data, follow=True)
    assert response.redirect_chain == [(reverse("console-ticket", args=[ticket.number]), 302)]
    return [str(message) for message in response.context["messages"]]


def test_the_page_shows_transcript_citations_notes_and_audit_trail(client_for, make_ticket, agent) -> None:
    ticket = make_ticket()
    Message.objects.create(conversation=ticket.conversation, role=Message.Role.AGENT, text="Hello, I'm Bob.")
    client = client_for("agent")
    _act(client, ticket, action="note", text="Carrier says it is at the depot.")
    html = client.get(reverse("console-ticket", args=[ticket.number])).content.decode()
    # the whole transcript, oldest first, newest at the bottom
    assert (
        html.index("Where is my parcel?")
        < html.index("Parcels usually arrive")
        < html.index("Hello, I&#x27;m Bob.")
    )
    assert 'class="msg agent"' in html
    assert "delivery.md" in html and "Standard delivery takes 3 working days." in html  # cited passage
    assert "Carrier says it is at the depot." in html  # internal note
    assert "Opened" in html and "Note" in html  # audit trail
    assert 'name="csrfmiddlewaretoken"' in html


def test_take_note_reply_and_resolve(client_for, make_ticket) -> None:
    ticket = make_ticket()
    client = client_for("agent")
    assert _act(client, ticket, action="take") == ["You took the ticket."]
    ticket.refresh_from_db()
    assert ticket.assignee.username == "bob-agent"

    _act(client, ticket, action="note", text="Asked the carrier.")
    assert ["Reply sent: the customer sees it in the chat, and the assistant stays silent."] == _act(
        client, ticket, action="reply", text="Your parcel is at the depot; it arrives tomorrow."
    )
    reply = Message.objects.get(conversation=ticket.conversation, role=Message.Role.AGENT)
    assert reply.text == "Your parcel is at the depot; it arrives tomorrow."
    ticket.refresh_from_db()
    ticket.conversation.refresh_from_db()
    assert ticket.first_response_at == reply.created_at
    assert ticket.conversation.status == Conversation.Status.AGENT  # the bot stays silent

    assert _act(client, ticket, action="status", status="resolved") == ["The ticket is resolved now."]
    ticket.refresh_from_db()
    ticket.conversation.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED
    assert ticket.conversation.status == Conversation.Status.BOT
    kinds = list(ticket.events.values_list("kind", flat=True))
    assert kinds == ["opened", "assigned", "note", "reply", "status"]


def test_assign_to_another_agent_change_priority_and_hand_back(client_for, make_ticket) -> None:
    ticket = make_ticket()
    other = staff_user_ensure(username="dave-agent", role=Role.AGENT).user
    client = client_for("admin")
    assert _act(client, ticket, action="assign", assignee=str(other.pk)) == ["Assignee changed."]
    assert _act(client, ticket, action="priority", priority="urgent") == ["Priority changed."]
    _act(client, ticket, action="reply", text="Looking into it.")
    assert _act(client, ticket, action="hand_back") == [
        "Handed back: the assistant answers the customer again."
    ]
    ticket.refresh_from_db()
    ticket.conversation.refresh_from_db()
    assert (ticket.assignee, ticket.priority) == (other, "urgent")
    assert ticket.conversation.status == Conversation.Status.BOT
    assert ticket.events.filter(kind=TicketEvent.Kind.HANDED_BACK).count() == 1


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"action": "status", "status": "closed"}, "Not done: a ticket that is open cannot become closed."),
        ({"action": "status", "status": "nonsense"}, "Not done: a ticket that is open cannot become nonsense."),
        ({"action": "note", "text": "   "}, "Not done: a note needs text."),
        ({"action": "reply", "text": ""}, "Not done: a reply needs text."),
        ({"action": "priority", "priority": "asap"}, "Not done: unknown priority 'asap'; one of low, normal, high, urgent."),
        ({"action": "assign", "assignee": "999999"}, "Not done: that person is not an active agent."),
        ({"action": "explode"}, "Unknown action."),
    ],
)  # fmt: skip
def test_a_refused_change_says_why_and_writes_nothing(client_for, make_ticket, data, error) -> None:
    ticket = make_ticket()
    before = (
        ticket.status,
        ticket.priority,
        ticket.assignee_id,
        ticket.events.count(),
        Message.objects.count(),
    )
    messages = _act(client_for("agent"), ticket, **data)
    assert messages == [error]
    ticket.refresh_from_db()
    after = (
        ticket.status,
        ticket.priority,
        ticket.assignee_id,
        ticket.events.count(),
        Message.objects.count(),
    )
    assert after == before
    page = client_for("agent").get(reverse("console-ticket", args=[ticket.number]))
    assert page.status_code == 200


def test_the_error_is_shown_on_the_page_after_the_redirect(client_for, make_ticket) -> None:
    ticket = make_ticket()
    client = client_for("agent")
    response = client.post(
        reverse("console-ticket-action", args=[ticket.number]),
        {"action": "status", "status": "closed"},
        follow=True,
    )
    assert "Not done: a ticket that is open cannot become closed." in response.content.decode()


def test_posts_without_a_csrf_token_are_refused(make_ticket, agent) -> None:
    from django.test import Client

    ticket = make_ticket()
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    response = client.post(reverse("console-ticket-action", args=[ticket.number]), {"action": "take"})
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.assignee is None


def test_an_unknown_ticket_is_404(client_for) -> None:
    assert client_for("agent").get(reverse("console-ticket", args=["T-999999"])).status_code == 404
    assert (
        client_for("agent").get(reverse("console-api-ticket-messages", args=["T-999999"])).status_code == 404
    )


def test_the_poll_endpoint_returns_new_messages_and_statuses(client_for, make_ticket) -> None:
    ticket = make_ticket()
    client = client_for("agent")
    url = reverse("console-api-ticket-messages", args=[ticket.number])
    everything = client.get(url).json()
    assert [m["role"] for m in everything["messages"]] == ["customer", "assistant"]
    assert everything["messages"][1]["citations"][0]["document"] == "delivery.md"
    assert everything["conversation_status"] == "waiting_for_agent"
    last = everything["messages"][-1]["id"]

    assert client.get(url, {"after": last}).json()["messages"] == []
    Message.objects.create(conversation=ticket.conversation, role=Message.Role.CUSTOMER, text="Any news?")
    news = client.get(url, {"after": last}).json()
    assert [m["text"] for m in news["messages"]] == ["Any news?"]
    assert news["ticket_status"] == "open" and news["assignee"] is None
    assert client.get(url, {"after": "-1"}).status_code == 400


def test_tool_calls_are_listed_when_the_tools_app_is_installed(client_for, make_ticket) -> None:
    from django.apps import apps

    ticket = make_ticket()
    html = client_for("agent").get(reverse("console-ticket", args=[ticket.number])).content.decode()
    assert "Tool calls" in html
    if not apps.is_installed("apps.tools"):
        return
    tool_call = apps.get_model("tools", "ToolCall")
    tool_call.objects.create(
        conversation=ticket.conversation, tool="track_shipment", arguments={"order": "DS20240501"},
        status="failed", attempts=3, error="carrier timed out",
    )  # fmt: skip
    html = client_for("agent").get(reverse("console-ticket", args=[ticket.number])).content.decode()
    assert "track_shipment" in html and "carrier timed out" in html
