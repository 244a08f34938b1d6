"""Ticket services on the real database: idempotent opening, the status machine, the audit trail,
replies that hand the conversation to a person, and who may do what."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from apps.accounts.roles import Role
from apps.accounts.services import staff_user_ensure
from apps.conversations.models import Conversation, Message
from apps.conversations.services import conversation_start
from apps.tickets.models import Ticket, TicketEvent
from apps.tickets.services import (
    TicketError,
    TicketTransitionError,
    ticket_assign,
    ticket_hand_back,
    ticket_note_add,
    ticket_open,
    ticket_priority_set,
    ticket_reply,
    ticket_status_set,
)
from tests.knowledge.helpers import make_kb


@pytest.fixture
def agent(db):
    return staff_user_ensure(username="bob-agent", role=Role.AGENT).user


@pytest.fixture
def conversation(db) -> Conversation:
    return conversation_start(knowledge_base=make_kb()).conversation


def test_open_numbers_the_ticket_sets_sla_and_moves_the_conversation_to_waiting(
    conversation, settings
) -> None:
    ticket, created = ticket_open(
        reason=Ticket.Reason.ANOMALY, dedupe_key="anomaly:DS1:stale_in_transit", conversation=conversation
    )
    assert created
    assert ticket.number == f"T-{ticket.pk:06d}"
    assert ticket.priority == Ticket.Priority.HIGH
    expected = ticket.created_at + timedelta(minutes=settings.TICKET_SLA_MINUTES["high"])
    assert abs((ticket.sla_due_at - expected).total_seconds()) < 5
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WAITING_FOR_AGENT
    assert [e.kind for e in ticket.events.all()] == [TicketEvent.Kind.OPENED]


def test_the_same_problem_twice_is_one_ticket_with_a_reported_again_event(conversation) -> None:
    first, created_first = ticket_open(
        reason="anomaly", dedupe_key="anomaly:DS1:lost", conversation=conversation
    )
    second, created_second = ticket_open(
        reason="anomaly", dedupe_key="anomaly:DS1:lost", conversation=conversation
    )
    assert (created_first, created_second) == (True, False)
    assert first.pk == second.pk
    assert Ticket.objects.count() == 1
    assert list(first.events.values_list("kind", flat=True)) == ["opened", "reported_again"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_opens_of_one_problem_make_one_ticket() -> None:
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        try:
            barrier.wait()
            ticket, created = ticket_open(reason="anomaly", dedupe_key="anomaly:DS9:exception")
            results.append((ticket.pk, created))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({pk for pk, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Ticket.objects.count() == 1


def test_a_resolved_problem_reported_again_reopens_its_ticket(agent) -> None:
    ticket, _ = ticket_open(reason="anomaly", dedupe_key="anomaly:DS2:returned_to_sender")
    ticket_status_set(ticket=ticket, status="resolved", actor=agent)
    again, created = ticket_open(reason="anomaly", dedupe_key="anomaly:DS2:returned_to_sender")
    assert not created
    assert again.status == Ticket.Status.OPEN


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["pending", "open", "resolved", "closed"], None),
        (["resolved", "open"], None),
        (["closed"], "closed"),
        (["resolved", "closed", "open"], "open"),
        (["resolved", "pending"], "pending"),
    ],
)
def test_status_machine(agent, path, refused) -> None:
    ticket, _ = ticket_open(reason="low_confidence", dedupe_key="low_confidence:conversation:1")
    for status in path:
        if status == refused:
            with pytest.raises(TicketTransitionError):
                ticket_status_set(ticket=ticket, status=status, actor=agent)
            return
        ticket = ticket_status_set(ticket=ticket, status=status, actor=agent)
        assert ticket.status == status
    assert refused is None


def test_reply_reaches_the_conversation_hands_it_to_the_agent_and_records_first_response(
    conversation, agent
) -> None:
    ticket, _ = ticket_open(
        reason="asked_for_person",
        dedupe_key=f"asked_for_person:conversation:{conversation.pk}",
        conversation=conversation,
    )
    message = ticket_reply(ticket=ticket, text="Hi, I'm Bob. Let me check that for you.", actor=agent)
    assert message.role == Message.Role.AGENT
    conversation.refresh_from_db()
    ticket.refresh_from_db()
    assert conversation.status == Conversation.Status.AGENT
    assert ticket.first_response_at == message.created_at
    assert ticket.assignee == agent
    ticket_hand_back(ticket=ticket, actor=agent)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.BOT
    kinds = list(ticket.events.values_list("kind", flat=True))
    assert kinds == ["opened", "reply", "handed_back"]


def test_resolving_gives_the_conversation_back_to_the_assistant(conversation, agent) -> None:
    ticket, _ = ticket_open(reason="asked_for_person", dedupe_key="k", conversation=conversation)
    ticket_reply(ticket=ticket, text="Done.", actor=agent)
    ticket_status_set(ticket=ticket, status="resolved", actor=agent)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.BOT


def test_every_change_is_audited_with_actor_before_and_after(agent) -> None:
    other = staff_user_ensure(username="carol-agent", role=Role.AGENT).user
    ticket, _ = ticket_open(reason="negative_feedback", dedupe_key="negative_feedback:conversation:5")
    ticket_assign(ticket=ticket, assignee=agent, actor=agent)
    ticket_assign(ticket=ticket, assignee=other, actor=agent)
    ticket_priority_set(ticket=ticket, priority="urgent", actor=other)
    ticket_note_add(ticket=ticket, text="Customer is a VIP.", actor=other)
    rows = list(ticket.events.values_list("kind", "actor__username", "before", "after", "text"))
    assert rows[1:] == [
        ("assigned", "bob-agent", "", "bob-agent", ""),
        ("assigned", "bob-agent", "bob-agent", "carol-agent", ""),
        ("priority", "carol-agent", "low", "urgent", ""),
        ("note", "carol-agent", "", "", "Customer is a VIP."),
    ]


def test_bad_input_is_refused_and_writes_nothing(conversation, agent, settings) -> None:
    ticket, _ = ticket_open(reason="asked_for_person", dedupe_key="x", conversation=conversation)
    before = TicketEvent.objects.count()
    with pytest.raises(TicketError):
        ticket_note_add(ticket=ticket, text="   ", actor=agent)
    with pytest.raises(TicketError):
        ticket_reply(ticket=ticket, text="", actor=agent)
    with pytest.raises(TicketError):
        ticket_reply(ticket=ticket, text="x" * (settings.CHAT_MAX_MESSAGE_CHARS + 1), actor=agent)
    with pytest.raises(TicketError):
        ticket_priority_set(ticket=ticket, priority="whenever", actor=agent)
    assert TicketEvent.objects.count() == before
    assert not Message.objects.filter(role=Message.Role.AGENT).exists()


def test_only_staff_work_tickets(conversation) -> None:
    customer_account = get_user_model().objects.create_user(username="mallory", password="x")
    agent = staff_user_ensure(username="bob-agent", role=Role.AGENT).user
    ticket, _ = ticket_open(reason="asked_for_person", dedupe_key="y", conversation=conversation)
    with pytest.raises(TicketError):
        ticket_reply(ticket=ticket, text="hello", actor=customer_account)
    with pytest.raises(TicketError):
        ticket_assign(ticket=ticket, assignee=customer_account, actor=agent)
    with pytest.raises(TicketError):
        ticket_status_set(ticket=ticket, status="resolved", actor=customer_account)
    assert not Message.objects.filter(role=Message.Role.AGENT).exists()
