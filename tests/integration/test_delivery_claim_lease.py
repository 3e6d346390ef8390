"""A notifier instance that dies with deliveries claimed: once their lease ends, another instance takes them."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from schemas import Criterion, Match, MatchedSubscription, MatchReason, NoticeKind, NoticeSummary, match_id_for
from services.notifier import queue
from services.runtime.service import Runtime
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

_LEASE = timedelta(seconds=3)


def _match(subscriber: str, notice_id: str) -> Match:
    summary = NoticeSummary(
        notice_id=notice_id, version="01", kind=NoticeKind.COMPETITION, title="Voirie", language="fr",
        buyer_name="Ville de Toulouse",
    )  # fmt: skip
    return Match(
        match_id=match_id_for(subscriber, notice_id, "01"),
        subscriber_id=subscriber,
        notice=summary,
        subscriptions=[
            MatchedSubscription(
                subscription_id="s1",
                name="a",
                reasons=[MatchReason(criterion=Criterion.EVERYTHING)],
                email="ops@example.org",
                webhook_endpoint_id="we_1",
            )
        ],
        matched_at=datetime.now(UTC),
    )


async def test_claims_of_an_instance_that_died_are_taken_again_when_their_lease_ends(settings: Settings) -> None:
    runtime = Runtime(settings, service="notifier", migrations="services.notifier")
    await runtime.start()
    try:
        pool = runtime.pool
        match = _match(f"acc_{time.time_ns()}", f"test:{time.time_ns()}")
        async with pool.acquire() as conn, conn.transaction():
            assert await queue.record(conn, match) == 2

        async def claim() -> list[queue.PendingDelivery]:
            claimed = await queue.claim_due(pool, limit=1000, lease=_LEASE)
            return [d for d in claimed if d.match.match_id == match.match_id]

        first = await claim()  # then the instance dies: nothing settles these
        assert sorted(d.attempts for d in first) == [1, 1]
        assert await claim() == []  # held by the dead instance until the lease ends

        deadline = time.monotonic() + 30
        taken_again = await claim()
        while not taken_again and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            taken_again = await claim()
        assert {d.delivery_id for d in taken_again} == {d.delivery_id for d in first}
        assert sorted(d.attempts for d in taken_again) == [2, 2]
    finally:
        await runtime.stop()
