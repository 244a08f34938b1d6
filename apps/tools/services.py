"""Tool call writes: create a call and queue it, execute it in the worker, wait for it, sweep.

A call is a row first (``tool_call_run``) and a Celery message second (queued on commit). The worker
claims the row with a conditional ``UPDATE`` and checks the row count, so a redelivered message never
runs a call twice at once; a finished call is never run again. Passing faults put the row back to
``queued`` and the task retries with backoff, up to ``TOOLS_MAX_ATTEMPTS`` attempts in all (counted on
the row, so a re-queue by the sweeper cannot add attempts). The chat turn polls the row
(``tool_call_wait_async``) for at most ``TOOLS_WAIT_SECONDS`` and answers honestly if it is not done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.conversations.models import Conversation
from apps.core.logging import log_context
from apps.tools.models import ToolCall
from apps.tools.tools import TOOLS, ToolError, ToolRetry, arguments_parse, follow_ups

logger = logging.getLogger(__name__)

# The first polls are quick (a database-only tool finishes in tens of milliseconds), later ones slower.
WAIT_POLL_FIRST_SECONDS = 0.05
WAIT_POLL_MAX_SECONDS = 0.5


class ToolCallRetry(Exception):
    """Raised by ``tool_call_execute`` when the call went back to ``queued`` for another attempt."""


def _enqueue(call_id: int) -> None:
    from apps.tools.tasks import tool_call_execute as task

    task.delay(call_id)


def tool_call_run(
    *,
    conversation: Conversation,
    tool: str,
    arguments: dict[str, Any],
    idempotency_key: str | None = None,
    parent: ToolCall | None = None,
) -> ToolCall:
    """Create the call and queue it once the surrounding transaction commits. With an
    ``idempotency_key`` that exists already, the existing call is returned and nothing is queued.
    ``ToolArgumentsInvalid`` (a ``ValueError``) when the arguments do not fit the tool."""
    arguments_parse(tool, arguments)
    if idempotency_key:
        existing = ToolCall.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            call = ToolCall.objects.create(
                conversation=conversation,
                parent=parent,
                tool=tool,
                arguments=arguments,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        # Another process created the same call between our read and our insert.
        return ToolCall.objects.get(idempotency_key=idempotency_key)
    transaction.on_commit(lambda: _enqueue(call.pk))
    logger.info(
        "tool call queued", extra={"conversation_id": conversation.pk, "tool_call_id": call.pk, "tool": tool}
    )
    return call


def tool_call_claim(*, call_id: int) -> bool:
    """Take the call for this worker: queued, or running but abandoned (a killed worker)."""
    now = timezone.now()
    abandoned = now - timedelta(seconds=settings.TOOLS_STALE_SECONDS)
    claimed = (
        ToolCall.objects.filter(pk=call_id)
        .filter(
            Q(status=ToolCall.Status.QUEUED) | Q(status=ToolCall.Status.RUNNING, started_at__lt=abandoned)
        )
        .update(status=ToolCall.Status.RUNNING, attempts=F("attempts") + 1, started_at=now)
    )
    return claimed == 1


def _finish(call: ToolCall, *, status: str, result: Any = None, error: str = "") -> None:
    call.status = status
    call.result = result
    call.error = error or call.error
    call.finished_at = timezone.now()
    call.save(update_fields=["status", "result", "error", "finished_at"])


def tool_call_execute(*, call_id: int) -> ToolCall | None:
    """Run one claimed attempt of the call. Returns the call, or None when another worker has it or
    it is finished. Raises ``ToolCallRetry`` after a passing fault with attempts left."""
    if not tool_call_claim(call_id=call_id):
        logger.info("tool call already taken or finished; nothing to do", extra={"tool_call_id": call_id})
        return None
    call = ToolCall.objects.select_related("conversation__knowledge_base").get(pk=call_id)
    with log_context(conversation_id=call.conversation_id, tool_call_id=call.pk, tool=call.tool):
        try:
            arguments = arguments_parse(call.tool, call.arguments)
            result = TOOLS[call.tool].run(call.conversation, arguments)
        except ToolRetry as exc:
            if call.attempts >= settings.TOOLS_MAX_ATTEMPTS:
                logger.warning("tool call failed after its last attempt", extra={"error": str(exc)})
                _finish(call, status=ToolCall.Status.FAILED, error=str(exc))
                return call
            ToolCall.objects.filter(pk=call.pk, status=ToolCall.Status.RUNNING).update(
                status=ToolCall.Status.QUEUED, error=str(exc)
            )
            logger.warning("tool call hit a passing fault; retrying", extra={"error": str(exc)})
            raise ToolCallRetry(str(exc)) from exc
        except ToolError as exc:
            logger.warning("tool call failed", extra={"error": str(exc)})
            _finish(call, status=ToolCall.Status.FAILED, error=str(exc))
            return call
        except Exception as exc:
            # A bug, not the customer's problem: the row says so, the log has the traceback, and the
            # chat turn answers honestly instead of waiting for a call that will never finish.
            logger.exception("tool call crashed")
            _finish(call, status=ToolCall.Status.FAILED, error=f"internal error: {type(exc).__name__}")
            return call
        with transaction.atomic():
            _finish(call, status=ToolCall.Status.SUCCEEDED, result=result)
            for tool, step_arguments, key in follow_ups(call):
                tool_call_run(
                    conversation=call.conversation,
                    tool=tool,
                    arguments=step_arguments,
                    idempotency_key=key,
                    parent=call,
                )
        logger.info("tool call succeeded", extra={"attempts": call.attempts})
    return call


def tool_call_wait(call: ToolCall, *, timeout: float) -> ToolCall:
    """The call, refreshed, once it succeeded or failed, or as it is after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    interval = WAIT_POLL_FIRST_SECONDS
    while True:
        call.refresh_from_db()
        if call.done or time.monotonic() >= deadline:
            return call
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 2, WAIT_POLL_MAX_SECONDS)


async def tool_call_wait_async(call_id: int, *, timeout: float) -> ToolCall:
    """``tool_call_wait`` for the asynchronous chat turn (polls without holding a thread)."""
    deadline = time.monotonic() + timeout
    interval = WAIT_POLL_FIRST_SECONDS
    while True:
        call = await ToolCall.objects.aget(pk=call_id)
        if call.done or time.monotonic() >= deadline:
            return call
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 2, WAIT_POLL_MAX_SECONDS)


def tool_calls_requeue_stale() -> list[int]:
    """Queue again the calls stuck in a non-final state: queued but never picked up (a lost broker
    message, Redis down at commit) or running on a worker that died. The claim makes a duplicate
    message harmless."""
    cutoff = timezone.now() - timedelta(seconds=settings.TOOLS_STALE_SECONDS)
    stale = list(
        ToolCall.objects.filter(
            Q(status=ToolCall.Status.QUEUED, created_at__lt=cutoff)
            & (Q(started_at__isnull=True) | Q(started_at__lt=cutoff))
            | Q(status=ToolCall.Status.RUNNING, started_at__lt=cutoff)
        ).values_list("pk", flat=True)
    )
    for call_id in stale:
        _enqueue(call_id)
    if stale:
        logger.warning("re-queued stale tool calls", extra={"tool_call_ids": stale})
    return stale
