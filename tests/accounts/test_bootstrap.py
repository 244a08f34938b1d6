from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, User
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def _bootstrap() -> str:
    out = io.StringIO()
    call_command("bootstrap_demo", stdout=out)
    return out.getvalue()


def test_roles_exist_after_migrations() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= {"admin", "agent"}


def test_demo_accounts_get_a_random_password_printed_once(monkeypatch) -> None:
    monkeypatch.delenv("DEMO_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("DEMO_AGENT_PASSWORD", raising=False)
    first = _bootstrap()
    second = _bootstrap()
    password = first.split("'demo-admin' with password '")[1].split("'")[0]
    assert authenticate(username="demo-admin", password=password) is not None
    assert "password" not in second
    assert User.objects.filter(username__in=["demo-admin", "demo-agent"]).count() == 2
    admin = User.objects.get(username="demo-admin")
    agent = User.objects.get(username="demo-agent")
    assert admin.is_staff and admin.groups.filter(name="admin").exists()
    assert not agent.is_staff and agent.groups.filter(name="agent").exists()


def test_demo_passwords_can_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "a-chosen-admin-password")
    monkeypatch.setenv("DEMO_AGENT_PASSWORD", "a-chosen-agent-password")
    output = _bootstrap()
    assert "a-chosen" not in output
    assert authenticate(username="demo-agent", password="a-chosen-agent-password") is not None
