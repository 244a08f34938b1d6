"""People and data for the console tests: the personas of tests/personas.py plus a signed-in user who
is neither agent nor admin (a customer-like account), and tickets on real conversations."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.accounts.roles import Role
from apps.accounts.services import staff_user_ensure
from apps.conversations.models import Conversation, Message
from apps.conversations.services import conversation_start
from apps.tickets.models import Ticket
from apps.tickets.services import ticket_open
from tests.knowledge.helpers import make_kb
from tests.personas import Personas

PERSONAS = ("anonymous", "customer", "non_staff", "agent", "admin")


@pytest.fixture
def client_for(personas: Personas) -> Callable[[str], Client]:
    """A test client signed in as one persona; ``non_staff`` is an account without a staff role."""

    def make(name: str) -> Client:
        if name == "non_staff":
            client = Client()
            user, _ = get_user_model().objects.get_or_create(username="carol-shopper")
            client.force_login(user)
            return client
        return personas.client(name)

    return make


@pytest.fixture
def agent(db):
    return staff_user_ensure(username="bob-agent", role=Role.AGENT).user


@pytest.fixture
def admin_user(db):
    return staff_user_ensure(username="alice-admin", role=Role.ADMIN).user


@pytest.fixture
def kb(db):
    return make_kb()


@pytest.fixture
def make_ticket(kb) -> Callable[..., Ticket]:
    """A ticket on a fresh conversation that holds a customer question and a cited answer."""
    counter = iter(range(1, 10_000))

    def make(reason: str = Ticket.Reason.ASKED_FOR_PERSON, **fields: object) -> Ticket:
        conversation: Conversation = conversation_start(knowledge_base=kb).conversation
        Message.objects.create(
            conversation=conversation, role=Message.Role.CUSTOMER, text="Where is my parcel?"
        )
        Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            text="Parcels usually arrive in 3 days [1].",
            citations=[
                {"n": 1, "chunk_id": 7, "document": "delivery.md", "heading_path": ["Delivery"],
                 "quote": "Standard delivery takes 3 working days."}
            ],
        )  # fmt: skip
        ticket, _ = ticket_open(
            reason=reason,
            dedupe_key=f"{reason}:conversation:{conversation.pk}:{next(counter)}",
            conversation=conversation,
            **fields,
        )
        return ticket

    return make
