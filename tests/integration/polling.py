"""Waiting for what a real service does in the background, within a bound: the caller asserts on what came back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, *, within: float = 60.0) -> T:
    """Poll `probe` until it returns something truthy, and return that. `within` only bounds a hang (not a timing
    assertion): past it, the test fails saying what it was waiting for."""
    deadline = time.monotonic() + within
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {within:.0f} s for {what}")
        await asyncio.sleep(0.05)
