"""The dashboard's numbers on a small known dataset, through its JSON endpoint, and the page with the
vendored chart library (no CDN)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone

from apps.conversations.models import Conversation, Message
from apps.conversations.services import conversation_start
from apps.tickets.models import Ticket
from apps.tickets.services import ticket_open

pytestmark = pytest.mark.django_db


def _conversation(kb, *, at, status=Conversation.Status.BOT) -> Conversation:
    conversation = conversation_start(knowledge_base=kb).conversation
    Conversation.objects.filter(pk=conversation.pk).update(created_at=at, status=status)
    return conversation


def _ticket(reason, *, at, first_response_minutes, conversation=None) -> Ticket:
    ticket, _ = ticket_open(reason=reason, dedupe_key=f"{reason}:{at.isoformat()}", conversation=conversation)
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=at, first_response_at=at + timedelta(minutes=first_response_minutes)
    )
    return ticket


def _answer(conversation, *, at, feedback) -> None:
    message = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, text="…", feedback=feedback
    )
    Message.objects.filter(pk=message.pk).update(created_at=at)


@pytest.fixture
def dataset(kb):
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    long_ago = now - timedelta(days=20)
    bot_only = _conversation(kb, at=now)
    asked = _conversation(kb, at=now)
    waiting = _conversation(kb, at=yesterday, status=Conversation.Status.WAITING_FOR_AGENT)
    anomaly = _conversation(kb, at=yesterday)
    old = _conversation(kb, at=long_ago)
    _ticket("asked_for_person", at=now, first_response_minutes=2, conversation=asked)
    _ticket("anomaly", at=yesterday, first_response_minutes=10, conversation=anomaly)
    _ticket("anomaly", at=now, first_response_minutes=4)  # opened by a tool step, no conversation
    _ticket("low_confidence", at=long_ago, first_response_minutes=1, conversation=old)
    for feedback in ("up", "up", "up", "down"):
        _answer(bot_only, at=now, feedback=feedback)
    _answer(waiting, at=now, feedback="")  # not rated
    _answer(old, at=long_ago, feedback="down")  # outside the window
    return now


def test_dashboard_numbers_on_a_known_dataset(client_for, dataset) -> None:
    data = client_for("agent").get(reverse("console-api-dashboard")).json()
    assert len(data["days"]) == 14
    assert data["days"][-1] == timezone.localdate(dataset).isoformat()
    assert data["conversations_per_day"][-2:] == [2, 2]
    assert sum(data["conversations_per_day"]) == 4
    assert (data["conversations"], data["resolved_by_bot"], data["escalated"]) == (4, 1, 3)
    assert data["escalation_reasons"] == {
        "anomaly": 2, "asked_for_person": 1, "low_confidence": 0, "negative_feedback": 0,
    }  # fmt: skip
    assert data["median_first_response_seconds"] == pytest.approx(240)
    assert (data["answers_rated"], data["thumbs_up"], data["thumbs_up_rate"]) == (4, 3, 0.75)


def test_a_longer_window_takes_in_older_data(client_for, dataset) -> None:
    data = client_for("admin").get(reverse("console-api-dashboard"), {"days": 30}).json()
    assert data["conversations"] == 5
    assert data["escalation_reasons"]["low_confidence"] == 1
    assert data["median_first_response_seconds"] == pytest.approx(180)  # 1, 2, 4, 10 minutes
    assert data["thumbs_up_rate"] == pytest.approx(3 / 5)


def test_an_empty_dashboard_has_no_rates(client_for) -> None:
    data = client_for("agent").get(reverse("console-api-dashboard"), {"days": 7}).json()
    assert data["conversations_per_day"] == [0] * 7
    assert data["median_first_response_seconds"] is None
    assert data["thumbs_up_rate"] is None


@pytest.mark.parametrize("days", ["0", "91", "x", "-3"])
def test_bad_windows_are_refused(client_for, days) -> None:
    assert client_for("agent").get(reverse("console-api-dashboard"), {"days": days}).status_code == 400


def test_the_page_loads_chart_js_from_our_own_static_files(client_for) -> None:
    html = client_for("agent").get(reverse("console-dashboard")).content.decode()
    assert "/static/tickets/vendor/chartjs/chart.umd.min.js" in html
    assert "cdn" not in html.lower()
    vendored = finders.find("tickets/vendor/chartjs/chart.umd.min.js")
    with open(vendored, encoding="utf-8") as handle:
        assert "Chart.js v4.6.1" in handle.read(200)
