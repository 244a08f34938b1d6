"""Helpers for the model-worker client tests."""

from __future__ import annotations

from typing import Any

from inference.client import ChatModel, StreamEnd, TextDelta


async def collect_stream(model: ChatModel, messages: Any, **sampling: Any) -> tuple[str, StreamEnd]:
    """A streamed answer's text and its closing event (which every stream must send)."""
    parts: list[str] = []
    end: StreamEnd | None = None
    async for event in model.stream(messages, **sampling):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        else:
            end = event
    assert end is not None
    return "".join(parts), end
