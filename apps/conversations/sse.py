"""Server-sent events from async views: keep-alive comments while the model is silent, and
the generation cancelled when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from django.http import StreamingHttpResponse

from apps.core.metrics import SSE_STREAMS_OPEN

KEEPALIVE_SECONDS = 15


async def with_keepalive(
    frames: AsyncGenerator[str, None], *, interval: float = KEEPALIVE_SECONDS
) -> AsyncIterator[str]:
    """``frames``, with a comment line whenever nothing was sent for ``interval`` seconds, so
    proxies keep the stream open (SSE clients, the OpenAI SDK included, skip comment lines).

    When the client disconnects, Django cancels this iterator; the frame being awaited is
    cancelled first and ``frames`` is then closed, which closes the model worker's stream and
    so aborts the generation.
    """
    pending = asyncio.ensure_future(frames.__anext__())
    SSE_STREAMS_OPEN.inc()
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield ": keep-alive\n\n"
                continue
            try:
                frame = pending.result()
            except StopAsyncIteration:
                return
            yield frame
            pending = asyncio.ensure_future(frames.__anext__())
    finally:
        SSE_STREAMS_OPEN.dec()
        if not pending.done():
            pending.cancel()
            # The generator cannot be closed while its frame is still running.
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending
        await frames.aclose()


def event_stream_response(frames: AsyncGenerator[str, None]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(with_keepalive(frames), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
