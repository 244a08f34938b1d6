"""Shared steps of the conversation tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

T = TypeVar("T")

SHADOW = "document.querySelector('#shopdesk-widget').shadowRoot"


def run_async(awaitable: Awaitable[T]) -> T:
    """``asyncio.run``, closing the database connections the async ORM opened in asgiref's
    thread (left open, they keep the test database from being dropped at the end)."""

    async def run() -> T:
        try:
            return await awaitable
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(run())


def widget_conversation_id(page) -> int:  # type: ignore[no-untyped-def]
    """The conversation the widget on ``page`` keeps in localStorage."""
    return page.evaluate(
        "() => JSON.parse(Object.entries(localStorage).find(([k]) => k.startsWith('shopdesk:'))[1]).id"
    )


def widget_is_inert(page) -> dict:  # type: ignore[no-untyped-def]
    """What an injected script or element would have left behind in the page and the widget."""
    return page.evaluate(
        f"""() => {{
          const root = {SHADOW};
          return {{
            pwned: window.__pwned === undefined ? null : String(window.__pwned),
            images: root.querySelectorAll('img').length + document.querySelectorAll('img').length,
            scripts: root.querySelectorAll('script').length,
            unsafeLinks: [...root.querySelectorAll('a')].map((a) => a.href).filter((h) => !/^https?:/.test(h)),
            handlers: [...root.querySelectorAll('*')].filter(
              (el) => [...el.attributes].some((a) => a.name.startsWith('on'))).length,
          }};
        }}"""
    )
