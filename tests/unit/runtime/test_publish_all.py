"""`publish_all`: what it does when a send fails, or is not a queued send (the broker path is an integration test)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.runtime.broker import publish_all


async def _queued(outcome: Any, settled: list[int], n: int) -> asyncio.Future[Any]:
    """A send as `publish(..., no_confirm=True)` returns it: queued, its acknowledgement to come."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def settle() -> None:
        settled.append(n)
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    asyncio.get_running_loop().call_later(0.01 * (3 - n), settle)  # acknowledged out of order
    return future


async def test_the_first_failure_is_raised_once_every_send_has_settled() -> None:
    settled: list[int] = []
    refused = ConnectionError("broker went away")
    sends = [_queued("ok", settled, 0), _queued(refused, settled, 1), _queued("ok", settled, 2)]
    with pytest.raises(ConnectionError) as raised:
        await publish_all(sends)
    assert raised.value is refused
    assert sorted(settled) == [0, 1, 2]  # nothing left pending behind the failure


async def test_every_send_is_counted_once_acknowledged() -> None:
    settled: list[int] = []
    assert await publish_all(_queued("ok", settled, n) for n in range(3)) == 3
    assert sorted(settled) == [0, 1, 2]


async def test_a_send_that_waited_for_its_own_ack_is_refused() -> None:
    async def acknowledged() -> str:
        return "record metadata"

    with pytest.raises(TypeError, match="no_confirm=True"):
        await publish_all([acknowledged()])
