"""The web server keeps one model-worker client per event loop and configuration (building one costs
~50 ms, more than the rest of the request path before the model call)."""

from __future__ import annotations

import asyncio

from apps.conversations.services import chat_model_shared


def test_one_client_per_event_loop_and_configuration(settings) -> None:
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"

    async def twice() -> tuple[object, object]:
        return chat_model_shared(), chat_model_shared()

    async def other_worker() -> object:
        settings.LLM_BASE_URL = "http://127.0.0.1:10/v1"
        return chat_model_shared()

    loop = asyncio.new_event_loop()
    try:
        first, second = loop.run_until_complete(twice())
        assert first is second
        moved = loop.run_until_complete(other_worker())
        assert moved is not first and moved.config.base_url == "http://127.0.0.1:10/v1"
    finally:
        loop.close()
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    third, _ = asyncio.run(twice())
    assert third is not first  # a new loop never gets a client bound to another loop's connections
