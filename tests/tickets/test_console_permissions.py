"""Who reaches which console page and endpoint: anonymous visitors, customers (widget visitors, no
account), a signed-in user without a staff role, an agent and an admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.accounts.roles import Role
from apps.accounts.services import staff_user_ensure
from apps.tickets.models import TicketEvent

pytestmark = pytest.mark.django_db

LOGIN = reverse("console-login")
STAFF_PAGE = {"anonymous": "login", "customer": "login", "non_staff": 403, "agent": 200, "admin": 200}
ADMIN_PAGE = {"anonymous": "login", "customer": "login", "non_staff": 403, "agent": 403, "admin": 200}
STAFF_API = {"anonymous": 401, "customer": 401, "non_staff": 403, "agent": 200, "admin": 200}


def _assert_outcome(response, expected) -> None:
    if expected == "login":
        assert response.status_code == 302
        assert response["Location"].startswith(LOGIN + "?next=")
    else:
        assert response.status_code == expected, response.content[:300]


@pytest.mark.parametrize("persona", STAFF_PAGE)
@pytest.mark.parametrize("page", ["queue", "ticket", "dashboard"])
def test_console_pages_are_for_agents_and_admins(client_for, make_ticket, persona, page) -> None:
    ticket = make_ticket()
    url = {
        "queue": reverse("console-queue"),
        "ticket": reverse("console-ticket", args=[ticket.number]),
        "dashboard": reverse("console-dashboard"),
    }[page]
    _assert_outcome(client_for(persona).get(url), STAFF_PAGE[persona])


@pytest.mark.parametrize("persona", STAFF_API)
@pytest.mark.parametrize("endpoint", ["queue", "messages", "dashboard"])
def test_console_json_endpoints_answer_401_and_403(client_for, make_ticket, persona, endpoint) -> None:
    ticket = make_ticket()
    url = {
        "queue": reverse("console-api-queue"),
        "messages": reverse("console-api-ticket-messages", args=[ticket.number]),
        "dashboard": reverse("console-api-dashboard"),
    }[endpoint]
    response = client_for(persona).get(url)
    assert response.status_code == STAFF_API[persona]
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("persona", STAFF_PAGE)
def test_ticket_actions_are_for_agents_and_admins(client_for, make_ticket, persona) -> None:
    ticket = make_ticket()
    response = client_for(persona).post(
        reverse("console-ticket-action", args=[ticket.number]),
        {"action": "note", "text": "checked the carrier"},
    )
    notes = TicketEvent.objects.filter(ticket=ticket, kind=TicketEvent.Kind.NOTE).count()
    if STAFF_PAGE[persona] == 200:
        assert response.status_code == 302
        assert response["Location"] == reverse("console-ticket", args=[ticket.number])
        assert notes == 1
    else:
        _assert_outcome(response, STAFF_PAGE[persona])
        assert notes == 0


@pytest.mark.parametrize("persona", ADMIN_PAGE)
def test_only_admins_manage_agents(client_for, persona) -> None:
    client = client_for(persona)
    _assert_outcome(client.get(reverse("console-agents")), ADMIN_PAGE[persona])

    created = client.post(reverse("console-agents"), {"username": "dave-agent"})
    _assert_outcome(created, 201 if persona == "admin" else ADMIN_PAGE[persona])

    other = staff_user_ensure(username="erin-agent", role=Role.AGENT).user
    deactivated = client.post(reverse("console-agent-deactivate", args=[other.pk]))
    if persona == "admin":
        assert deactivated.status_code == 302
    else:
        _assert_outcome(deactivated, ADMIN_PAGE[persona])
    other.refresh_from_db()
    assert other.is_active is (persona != "admin")
    assert get_user_model().objects.filter(username="dave-agent").exists() is (persona == "admin")


def test_the_console_sign_in_page_lets_an_agent_in(agent) -> None:
    agent.set_password("correct horse battery")
    agent.save()
    client = Client()
    response = client.post(LOGIN, {"username": "bob-agent", "password": "correct horse battery"})
    assert response.status_code == 302
    assert response["Location"] == reverse("console-queue")
    assert client.get(reverse("console-queue")).status_code == 200


def test_a_deactivated_agent_cannot_sign_in(agent, admin_user) -> None:
    agent.set_password("correct horse battery")
    agent.save()
    admin = Client()
    admin.force_login(admin_user)
    admin.post(reverse("console-agent-deactivate", args=[agent.pk]))
    response = Client().post(LOGIN, {"username": "bob-agent", "password": "correct horse battery"})
    assert response.status_code == 200
    assert b"didn't match" in response.content
