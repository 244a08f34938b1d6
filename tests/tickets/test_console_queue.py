"""The queue: filters, counts per status, order (unassigned first, then SLA due), SLA breaches,
pagination, the poll endpoint's new tickets, and a pinned query count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.tickets.models import Ticket
from apps.tickets.services import ticket_assign, ticket_status_set

pytestmark = pytest.mark.django_db


def _numbers(response) -> list[str]:
    return [ticket.number for ticket in response.context["page"]]


@pytest.fixture
def queue(make_ticket, agent, admin_user):
    """Five tickets: an assigned urgent one, two unassigned with different SLAs (one overdue),
    one assigned to the admin, and a resolved one."""
    now = timezone.now()
    urgent_mine = make_ticket(reason="anomaly", priority="urgent")
    ticket_assign(ticket=urgent_mine, assignee=agent, actor=agent)
    later = make_ticket(reason="asked_for_person", priority="low")
    overdue = make_ticket(reason="low_confidence")
    Ticket.objects.filter(pk=overdue.pk).update(sla_due_at=now - timedelta(minutes=5))
    admins = make_ticket(reason="anomaly")
    ticket_assign(ticket=admins, assignee=admin_user, actor=admin_user)
    done = make_ticket(reason="negative_feedback")
    ticket_status_set(ticket=done, status="resolved", actor=agent)
    return {"urgent_mine": urgent_mine, "later": later, "overdue": overdue, "admins": admins, "done": done}


def test_unassigned_first_then_by_sla_due_and_overdue_rows_are_highlighted(client_for, queue) -> None:
    response = client_for("agent").get(reverse("console-queue"))
    assert _numbers(response) == [
        queue["overdue"].number,  # unassigned, overdue
        queue["later"].number,  # unassigned, due in a day
        queue["urgent_mine"].number,  # assigned, due in 30 minutes
        queue["admins"].number,  # assigned, due in an hour
    ]
    html = response.content.decode()
    assert f'<tr data-number="{queue["overdue"].number}" class="breach">' in html
    assert f'<tr data-number="{queue["later"].number}" >' in html
    assert "overdue" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"assignee": "mine"}, ["urgent_mine"]),
        ({"assignee": "unassigned"}, ["overdue", "later"]),
        ({"reason": "anomaly"}, ["urgent_mine", "admins"]),
        ({"priority": "urgent"}, ["urgent_mine"]),
        ({"status": "resolved"}, ["done"]),
        ({"status": "all", "reason": "negative_feedback"}, ["done"]),
        ({"status": "open", "assignee": "unassigned", "reason": "low_confidence"}, ["overdue"]),
        ({"status": "bogus"}, ["overdue", "later", "urgent_mine", "admins"]),
    ],
)
def test_filters(client_for, queue, query, expected) -> None:
    response = client_for("agent").get(reverse("console-queue"), query)
    assert _numbers(response) == [queue[name].number for name in expected]


def test_counts_per_status_follow_the_other_filters(client_for, queue) -> None:
    counts = client_for("agent").get(reverse("console-queue")).context["counts"]
    assert counts == {"open": 4, "pending": 0, "resolved": 1, "closed": 0, "active": 4, "all": 5}
    counts = client_for("agent").get(reverse("console-queue"), {"reason": "anomaly"}).context["counts"]
    assert counts == {"open": 2, "pending": 0, "resolved": 0, "closed": 0, "active": 2, "all": 2}
    mine = client_for("agent").get(reverse("console-queue"), {"assignee": "mine", "status": "all"})
    assert mine.context["counts"]["all"] == 1


def test_pagination(client_for, make_ticket) -> None:
    for _ in range(27):
        make_ticket()
    client = client_for("agent")
    first = client.get(reverse("console-queue"))
    second = client.get(reverse("console-queue"), {"page": 2})
    assert len(_numbers(first)) == 25
    assert len(_numbers(second)) == 2
    assert not set(_numbers(first)) & set(_numbers(second))
    assert "page=2" in first.content.decode()


def test_the_queue_runs_a_fixed_number_of_queries_however_many_tickets(
    client_for, make_ticket, agent, django_assert_max_num_queries
) -> None:
    for index in range(30):
        ticket = make_ticket(reason="anomaly" if index % 2 else "asked_for_person")
        if index % 3 == 0:
            ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    client = client_for("agent")
    client.get(reverse("console-queue"))  # warm the session
    # session, user, agent role, admin role (navigation), counts, paginator count, latest id, rows;
    # the JSON poll: the same without the navigation, plus the tickets opened since.
    with django_assert_max_num_queries(8):
        page = client.get(reverse("console-queue"))
    assert len(_numbers(page)) == 25
    with django_assert_max_num_queries(8):
        data = client.get(reverse("console-api-queue"), {"since": 1}).json()
    assert len(data["tickets"]) == 25


def test_the_poll_endpoint_reports_new_tickets_counts_and_rows(client_for, make_ticket) -> None:
    client = client_for("agent")
    empty = client.get(reverse("console-api-queue"), {"since": 0}).json()
    assert (empty["latest_id"], empty["opened"], empty["tickets"]) == (0, [], [])
    first = make_ticket()
    # A console that saw no tickets at all hears about the very first one.
    assert [t["number"] for t in client.get(reverse("console-api-queue"), {"since": 0}).json()["opened"]] == [
        first.number
    ]
    before = client.get(reverse("console-api-queue"), {"since": first.pk}).json()
    assert before["opened"] == []
    assert before["latest_id"] == first.pk

    second = make_ticket(reason="anomaly")
    after = client.get(reverse("console-api-queue"), {"since": before["latest_id"]}).json()
    assert [t["number"] for t in after["opened"]] == [second.number]
    assert after["opened"][0]["url"] == reverse("console-ticket", args=[second.number])
    assert after["counts"]["active"] == 2
    assert {t["number"] for t in after["tickets"]} == {first.number, second.number}
    row = next(t for t in after["tickets"] if t["number"] == second.number)
    assert row["reason"] == "anomaly" and row["priority"] == "high" and row["assignee"] is None

    assert client.get(reverse("console-api-queue"), {"since": "x"}).status_code == 400
