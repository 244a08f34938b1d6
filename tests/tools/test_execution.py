"""Executing tool calls in the real Celery worker: redelivery, carrier failures, retries, the sweeper."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from apps.tickets.models import Ticket
from apps.tools.models import ToolCall
from apps.tools.services import (
    _enqueue,
    tool_call_execute,
    tool_call_run,
    tool_call_wait,
    tool_calls_requeue_stale,
)
from apps.tools.tools import ToolArgumentsInvalid
from tests.conftest import WORKER_TOOLS_MAX_ATTEMPTS
from tests.tools.conftest import LI_WEI, sandbox_order, start, turn

pytestmark = pytest.mark.django_db(transaction=True)

SEED_LOOKUP = {"order_number": "DS20240501", "emails": [], "phones": []}


def _anomaly_ticket_call(conversation) -> ToolCall:
    lookup = tool_call_wait(
        tool_call_run(conversation=conversation, tool="track_shipment", arguments=SEED_LOOKUP), timeout=20
    )
    assert lookup.status == ToolCall.Status.SUCCEEDED, lookup.error
    return tool_call_wait(lookup.follow_ups.get(), timeout=20)


def test_the_ticket_step_delivered_twice_opens_one_ticket(shop) -> None:
    conversation = start(shop, customer_id=LI_WEI)
    ticket_call = _anomaly_ticket_call(conversation)
    assert ticket_call.status == ToolCall.Status.SUCCEEDED and ticket_call.attempts == 1

    # The broker hands the same message out again (twice), and a worker runs it by hand: the claim
    # finds a finished call, so nothing runs.
    _enqueue(ticket_call.pk)
    _enqueue(ticket_call.pk)
    assert tool_call_execute(call_id=ticket_call.pk) is None
    time.sleep(1.5)
    ticket_call.refresh_from_db()
    assert ticket_call.attempts == 1

    # A second call for the same anomaly (the customer asked again) finds the same ticket.
    again = _anomaly_ticket_call(conversation)
    assert again.pk != ticket_call.pk
    assert again.result == {"ticket": ticket_call.result["ticket"], "created": False, "reason": "anomaly"}
    assert Ticket.objects.filter(dedupe_key="anomaly:DS20240501:stale_in_transit").count() == 1
    assert Ticket.objects.count() == 1


def test_a_call_queued_three_times_at_once_runs_once(shop) -> None:
    conversation = start(shop, customer_id=LI_WEI)
    with transaction.atomic():
        call = tool_call_run(
            conversation=conversation, tool="handoff_to_human", arguments={"detail": "please, a person"}
        )
        # Queued again before the first message was even sent: three deliveries of one call.
        transaction.on_commit(lambda: [_enqueue(call.pk), _enqueue(call.pk)])
    call = tool_call_wait(call, timeout=20)
    time.sleep(1.5)
    call.refresh_from_db()
    assert call.status == ToolCall.Status.SUCCEEDED and call.attempts == 1
    assert Ticket.objects.filter(reason=Ticket.Reason.ASKED_FOR_PERSON).count() == 1


def test_the_same_idempotency_key_is_one_call(shop) -> None:
    conversation = start(shop, customer_id=LI_WEI)
    first = tool_call_run(
        conversation=conversation, tool="track_shipment", arguments=SEED_LOOKUP, idempotency_key="msg:1:track"
    )
    second = tool_call_run(
        conversation=conversation, tool="track_shipment", arguments=SEED_LOOKUP, idempotency_key="msg:1:track"
    )
    assert first.pk == second.pk
    tool_call_wait(first, timeout=20)
    assert ToolCall.objects.filter(tool="track_shipment").count() == 1


def test_arguments_are_validated_before_a_row_exists(shop) -> None:
    conversation = start(shop, customer_id=LI_WEI)
    for tool, arguments in [
        ("track_shipment", {"order_number": "../../etc/passwd"}),
        ("track_shipment", {"order_number": "DS20240501", "customer_id": LI_WEI}),  # no identity in arguments
        ("open_ticket", {"reason": "anomaly", "order_number": "DS20240501"}),  # no anomaly code
        ("open_ticket", {"reason": "made_up"}),
        ("drop_tables", {}),
    ]:
        with pytest.raises(ToolArgumentsInvalid):
            tool_call_run(conversation=conversation, tool=tool, arguments=arguments)
    assert not ToolCall.objects.exists()


def test_an_anomaly_ticket_needs_this_conversations_own_lookup(shop) -> None:
    """open_ticket does not take an order's word for it: without an authorised lookup of that order
    in the same conversation it refuses (another conversation's lookup does not count)."""
    _anomaly_ticket_call(start(shop, customer_id=LI_WEI))
    stranger = start(shop, customer_id="lumen-c-10002")
    call = tool_call_wait(
        tool_call_run(
            conversation=stranger,
            tool="open_ticket",
            arguments={"reason": "anomaly", "order_number": "DS20240501", "anomaly_code": "stale_in_transit"},
        ),
        timeout=20,
    )
    assert call.status == ToolCall.Status.FAILED and "no authorised lookup" in call.error
    assert not Ticket.objects.filter(conversation=stranger).exists()


def test_a_carrier_500_is_retried_then_answered_honestly(shop) -> None:
    sandbox_order("DS99000500", "SBX-ERROR-500", customer_id=LI_WEI)
    conversation = start(shop, customer_id=LI_WEI)
    reply = turn(conversation, "where is my order DS99000500?")

    assert reply["outcome"] == "tool_failed"
    assert "couldn't get the tracking details" in reply["text"] and "try again" in reply["text"]
    call = ToolCall.objects.get(conversation=conversation)
    assert call.status == ToolCall.Status.FAILED
    assert call.attempts == WORKER_TOOLS_MAX_ATTEMPTS  # the task retried the passing fault
    assert call.error.startswith("CarrierUnavailable:") and "500" in call.error
    assert call.result is None
    assert not Ticket.objects.exists()


def test_carrier_garbage_fails_at_once_with_the_error_on_the_row(shop) -> None:
    sandbox_order("DS99000666", "SBX-GARBAGE-01", customer_id=LI_WEI)
    conversation = start(shop, customer_id=LI_WEI)
    reply = turn(conversation, "tracking for DS99000666 please")

    assert reply["outcome"] == "tool_failed"
    call = ToolCall.objects.get(conversation=conversation)
    assert call.status == ToolCall.Status.FAILED and call.attempts == 1  # not a passing fault
    assert call.error.startswith("CarrierResponseInvalid:")


def test_a_slow_carrier_gets_a_still_checking_answer_and_the_row_records_the_timeout(shop, settings) -> None:
    settings.TOOLS_WAIT_SECONDS = 1.0
    sandbox_order("DS99000777", "SBX-SLOW-0001", customer_id=LI_WEI)
    conversation = start(shop, customer_id=LI_WEI)
    started = time.monotonic()
    reply = turn(conversation, "where is DS99000777?")

    assert time.monotonic() - started < 5
    assert reply["outcome"] == "tool_pending"
    assert "still checking" in reply["text"] and "ask me again in a minute" in reply["text"]
    call = tool_call_wait(ToolCall.objects.get(conversation=conversation), timeout=30)
    assert call.status == ToolCall.Status.FAILED and call.attempts == WORKER_TOOLS_MAX_ATTEMPTS
    assert call.error.startswith("CarrierTimeout:")


def test_a_carrier_that_recovers_succeeds_on_the_tasks_retry(shop) -> None:
    # The sandbox fails the first two requests (503); the worker's adapter tries twice per attempt.
    sandbox_order("DS99000503", "SBX-FLAKY-0001", customer_id=LI_WEI)
    conversation = start(shop, customer_id=LI_WEI)
    reply = turn(conversation, "where is DS99000503?")

    assert reply["outcome"] == "order_status" and "Answered after two failures" in reply["text"]
    call = ToolCall.objects.get(conversation=conversation)
    assert call.status == ToolCall.Status.SUCCEEDED and call.attempts == 2
    assert "503" in call.error  # the first attempt's fault stays visible


def test_the_sweeper_requeues_a_call_whose_message_was_lost(shop, settings) -> None:
    conversation = start(shop, customer_id=LI_WEI)
    call = ToolCall.objects.create(  # a row whose broker message never arrived
        conversation=conversation, tool="handoff_to_human", arguments={"detail": ""}
    )
    settings.TOOLS_STALE_SECONDS = 0
    assert tool_calls_requeue_stale() == [call.pk]
    assert tool_call_wait(call, timeout=20).status == ToolCall.Status.SUCCEEDED
