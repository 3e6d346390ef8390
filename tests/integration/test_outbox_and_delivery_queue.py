"""The API's outbox and the notifier's delivery queue on the real database and broker."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas import Channel, Criterion, Match, MatchedSubscription, MatchReason, NoticeKind, NoticeSummary, match_id_for
from services.api import outbox
from services.notifier import queue
from services.notifier.outcome import Outcome
from services.runtime.broker import create_topics
from services.runtime.service import Runtime
from services.runtime.settings import Settings
from tests.integration.kafka_records import read_records

pytestmark = pytest.mark.integration


async def test_outbox_publishes_committed_changes_in_order_and_never_rolled_back_ones(settings: Settings) -> None:
    runtime = Runtime(settings, service="api", migrations="services.api")
    await runtime.start()
    try:
        key = f"sub_outbox_{time.time_ns()}"
        topic = f"test-outbox-{time.time_ns()}"  # not the real topic: a running matcher would read it
        await create_topics(settings, {topic: {}})
        pool = runtime.pool
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, topic=topic, key=key, value=b'{"v": 1}')
        with pytest.raises(RuntimeError):
            async with pool.acquire() as conn, conn.transaction():
                await outbox.add(conn, topic=topic, key=key, value=b'{"v": "rolled back"}')
                raise RuntimeError("the request failed after writing")
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, topic=topic, key=key, value=None)

        relay = outbox.OutboxRelay(pool, runtime.broker)
        while await relay.relay_once():
            pass
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE key = $1 AND published_at IS NULL", key) == 0
        records = await read_records(settings, topic, key=key.encode(), want=2)
    finally:
        await runtime.stop()
    assert [r.value for r in records] == [b'{"v": 1}', None]  # the deletion is a real tombstone


_EVERYTHING = [MatchReason(criterion=Criterion.EVERYTHING)]


def _match(
    subscriber: str, notice_id: str, duplicate_group: str | None = None, kind: NoticeKind = NoticeKind.COMPETITION
) -> Match:
    summary = NoticeSummary(
        notice_id=notice_id, version="01", kind=kind, title="Voirie", language="fr",
        buyer_name="Ville de Toulouse", duplicate_group=duplicate_group,
    )  # fmt: skip
    return Match(
        match_id=match_id_for(subscriber, notice_id, "01"),
        subscriber_id=subscriber,
        notice=summary,
        subscriptions=[
            MatchedSubscription(subscription_id="s1", name="a", reasons=_EVERYTHING, email="Ops@Example.org"),
            MatchedSubscription(
                subscription_id="s2", name="b", reasons=_EVERYTHING, email="ops@example.org", webhook_endpoint_id="we_1"
            ),
        ],
        matched_at=datetime.now(UTC),
    )


async def test_a_redelivered_match_is_queued_once_per_target_and_settles_once(settings: Settings) -> None:
    runtime = Runtime(settings, service="notifier", migrations="services.notifier")
    await runtime.start()
    try:
        pool: asyncpg.Pool = runtime.pool
        match = _match(f"acc_{time.time_ns()}", f"test:{time.time_ns()}")
        async with pool.acquire() as conn, conn.transaction():
            assert await queue.record(conn, match) == 2  # one email (both subscriptions share it), one webhook
        async with pool.acquire() as conn, conn.transaction():
            assert await queue.record(conn, match) == 0  # the same Kafka message again
        rows = await pool.fetch(
            "SELECT channel, target, status FROM deliveries WHERE match_id = $1 ORDER BY channel", match.match_id
        )
        assert [(r["channel"], r["target"], r["status"]) for r in rows] == [
            ("email", "ops@example.org", "pending"),
            ("webhook", "we_1", "pending"),
        ]
        claimed = [d for d in await queue.claim_due(pool, limit=1000) if d.match.match_id == match.match_id]
        assert {d.channel for d in claimed} == {Channel.EMAIL, Channel.WEBHOOK}
        email = next(d for d in claimed if d.channel is Channel.EMAIL)
        webhook = next(d for d in claimed if d.channel is Channel.WEBHOOK)
        assert await queue.settle(pool, email, Outcome.sent("250 ok")) == "sent"
        assert await queue.settle(pool, webhook, Outcome.retry("HTTP 503")) == "retrying"
        again = [d for d in await queue.claim_due(pool, limit=1000) if d.match.match_id == match.match_id]
        assert again == []  # sent is final; the retry waits for its backoff
        attempts = await pool.fetch(
            "SELECT outcome, detail FROM delivery_attempts WHERE delivery_id = $1", webhook.delivery_id
        )
        assert [(a["outcome"], a["detail"]) for a in attempts] == [("retry", "HTTP 503")]
    finally:
        await runtime.stop()


async def test_a_procedure_published_by_two_sources_reaches_a_subscriber_once_per_kind(settings: Settings) -> None:
    runtime = Runtime(settings, service="notifier", migrations="services.notifier")
    await runtime.start()
    try:
        pool: asyncpg.Pool = runtime.pool
        subscriber, group = f"acc_{time.time_ns()}", f"proc:{time.time_ns()}"
        on_ted = _match(subscriber, f"eforms:{time.time_ns()}", group)
        on_boamp = _match(subscriber, f"boamp:{time.time_ns()}", group)
        async with pool.acquire() as conn, conn.transaction():
            assert await queue.record(conn, on_ted) == 2
        async with pool.acquire() as conn, conn.transaction():
            assert await queue.record(conn, on_boamp) == 0
        rows = await pool.fetch(
            "SELECT channel, status, last_error FROM deliveries WHERE match_id = $1 ORDER BY channel",
            on_boamp.match_id,
        )
        assert [(r["channel"], r["status"]) for r in rows] == [("email", "suppressed"), ("webhook", "suppressed")]
        assert rows[0]["last_error"] == f"same procedure as {on_ted.notice.notice_id}, already delivered"
        other = _match(f"acc_other_{time.time_ns()}", on_boamp.notice.notice_id, group)
        async with pool.acquire() as conn, conn.transaction():
            assert await queue.record(conn, other) == 2  # another subscriber still hears of it
        award = _match(subscriber, f"eforms:{time.time_ns()}", group, NoticeKind.RESULT)
        async with pool.acquire() as conn, conn.transaction():
            assert await queue.record(conn, award) == 2  # the award of the procedure is news
    finally:
        await runtime.stop()
