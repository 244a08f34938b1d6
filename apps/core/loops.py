"""Objects kept per running event loop: network clients whose connections belong to the loop that
opened them, built once and reused by every request that loop serves."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, Any]] = (
    weakref.WeakKeyDictionary()
)


def loop_shared(key: Hashable, factory: Callable[[], T]) -> T:
    """The object for ``key`` on the running event loop, built with ``factory`` on first use. A new
    loop (a test's ``asyncio.run``) gets its own; the caller must not close it."""
    objects = _per_loop.setdefault(asyncio.get_running_loop(), {})
    if key not in objects:
        objects[key] = factory()
    return objects[key]
