"""Admins manage agents in the console: a new agent's generated password is shown once and works;
deactivated agents are marked inactive; admins cannot deactivate themselves."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.accounts.permissions import has_role
from apps.accounts.roles import Role

pytestmark = pytest.mark.django_db


def test_create_an_agent_whose_password_is_shown_once_and_works(client_for) -> None:
    admin = client_for("admin")
    response = admin.post(reverse("console-agents"), {"username": "frank-agent"})
    assert response.status_code == 201
    password = response.context["created"].password
    assert password and password in response.content.decode()
    user = get_user_model().objects.get(username="frank-agent")
    assert has_role(user, Role.AGENT) and not has_role(user, Role.ADMIN)
    assert not user.is_staff  # agents have no Django admin access
    assert password not in user.password  # stored as a hash

    listing = admin.get(reverse("console-agents")).content.decode()
    assert "frank-agent" in listing and password not in listing

    agent = Client()
    signed_in = agent.post(reverse("console-login"), {"username": "frank-agent", "password": password})
    assert signed_in.status_code == 302
    assert agent.get(reverse("console-queue")).status_code == 200
    assert agent.get(reverse("console-agents")).status_code == 403


@pytest.mark.parametrize("username", ["bob-agent", "BOB-AGENT", "", "no spaces allowed"])
def test_taken_or_bad_usernames_are_refused(client_for, agent, username) -> None:
    admin = client_for("admin")
    before = get_user_model().objects.count()
    response = admin.post(reverse("console-agents"), {"username": username})
    assert response.status_code == 400
    assert "Not created:" in response.content.decode()
    assert get_user_model().objects.count() == before


def test_deactivate_an_agent_but_not_yourself(client_for, agent, admin_user) -> None:
    admin = client_for("admin")
    page = admin.get(reverse("console-agents")).content.decode()
    assert 'data-username="bob-agent"' in page
    followed = admin.post(reverse("console-agent-deactivate", args=[agent.pk]), follow=True)
    assert "bob-agent can no longer sign in." in followed.content.decode()
    agent.refresh_from_db()
    assert not agent.is_active

    refused = admin.post(reverse("console-agent-deactivate", args=[admin_user.pk]), follow=True)
    assert "Not deactivated: you cannot deactivate your own account." in refused.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_admins_see_where_tool_call_failures_are(client_for) -> None:
    from apps.tickets.admin_links import tool_call_failures_url

    page = client_for("admin").get(reverse("console-agents")).content.decode()
    url = tool_call_failures_url()
    if url:
        assert url.replace("&", "&amp;") in page or url in page
        assert client_for("admin").get(url).status_code == 200
    else:
        assert 'id="tool-failures-pending"' in page
    assert "Tool-call failures" not in client_for("agent").get(reverse("console-queue")).content.decode()
