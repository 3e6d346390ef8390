"""The shared runtime against the real broker and database of the test stack."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.middlewares import AckPolicy

from services.runtime.broker import create_topics, ensure_topics, make_broker, publish_all
from services.runtime.db import apply_migrations, create_pool
from services.runtime.dlq import BadInput
from services.runtime.service import Runtime
from services.runtime.settings import Settings
from tests.integration.kafka_records import read_records

pytestmark = pytest.mark.integration


async def test_migrations_apply_once_and_are_recorded(settings: Settings) -> None:
    pool = await create_pool(settings, schema="ingest")
    try:
        first = await apply_migrations(pool, service="ingest", package="services.ingest")
        second = await apply_migrations(pool, service="ingest", package="services.ingest")
        assert second == []
        rows = await pool.fetch("SELECT version, name FROM schema_migrations WHERE service = 'ingest' ORDER BY version")
        names = ["001_raw_documents.sql", "002_poller_cursors.sql", "003_content_hash.sql"]
        assert [r["name"] for r in rows] == names
        assert first in ([], names)  # another test may have migrated this database first
        assert await pool.fetchval("SELECT to_regclass('published_notices')::text") == "published_notices"
    finally:
        await pool.close()


async def test_topics_are_created_once(settings: Settings) -> None:
    await ensure_topics(settings)
    assert await ensure_topics(settings) == []


async def test_bad_input_is_dead_lettered_with_its_bytes_and_origin_and_the_consumer_goes_on(
    settings: Settings,
) -> None:
    topic = f"test-dlq-{uuid.uuid4().hex[:8]}"
    await create_topics(settings, {topic: {}, f"{topic}.dlq": {}})
    runtime = Runtime(settings, service="dlq-test")
    handled: list[dict[str, Any]] = []
    attempts: dict[str, int] = {}

    @runtime.broker.subscriber(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                               ack_policy=AckPolicy.NACK_ON_ERROR)  # fmt: skip
    async def handle(body: dict[str, Any]) -> None:
        if body.get("bad"):
            raise BadInput("not-a-notice", f"no notice in {body}")
        if body.get("flaky"):
            attempts["flaky"] = attempts.get("flaky", 0) + 1
            if attempts["flaky"] < 2:
                raise ConnectionError("database went away")
        handled.append(body)

    await runtime.broker.start()
    try:
        for value in ({"n": 1}, {"bad": True}, b"{not json", {"flaky": True}, {"n": 2}):
            await runtime.broker.publish(value, topic, key=b"k")
        deadline = time.monotonic() + 30
        while len(handled) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        await runtime.broker.stop()

    assert handled == [{"n": 1}, {"flaky": True}, {"n": 2}]
    assert attempts["flaky"] == 2
    dead = await read_records(settings, f"{topic}.dlq", want=2)
    assert len(dead) == 2
    by_body = {r.value: {k: v.decode() for k, v in r.headers} for r in dead}
    bad = next(h for body, h in by_body.items() if body.startswith(b'{"') and json.loads(body) == {"bad": True})
    assert bad["tw-error-reason"] == "not-a-notice"
    assert bad["tw-source-topic"] == topic
    assert bad["tw-source-offset"] == "1"
    assert bad["tw-service"] == "dlq-test"
    broken = by_body[b"{not json"]
    assert broken["tw-source-offset"] == "2"
    assert broken["tw-error-type"] in ("JSONDecodeError", "ValidationError", "ValueError")


async def test_a_persistent_failure_is_dead_lettered_after_the_attempts(settings: Settings) -> None:
    topic = f"test-retry-{uuid.uuid4().hex[:8]}"
    await create_topics(settings, {topic: {}, f"{topic}.dlq": {}})
    runtime = Runtime(settings, service="retry-test")
    runtime.dead_letters.backoff_seconds = 0.05
    calls = 0

    @runtime.broker.subscriber(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                               ack_policy=AckPolicy.NACK_ON_ERROR)  # fmt: skip
    async def handle(body: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("still down")

    await runtime.broker.start()
    try:
        await runtime.broker.publish({"x": 1}, topic)
        dead = await read_records(settings, f"{topic}.dlq", want=1)
    finally:
        await runtime.broker.stop()
    assert calls == 3
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["tw-error-reason"] == "processing-failed"
    assert headers["tw-attempts"] == "3"
    assert "still down" in headers["tw-error"]


async def test_readiness_reports_each_dependency(settings: Settings) -> None:
    runtime = Runtime(settings, service="api", migrations="services.api")
    assert (await runtime.readiness())["consuming"] == "starting"
    await runtime.start()
    try:
        checks = await runtime.readiness()
        assert checks == {"consuming": "ok", "kafka": "ok", "database": "ok"}
    finally:
        await runtime.stop()


async def test_stopping_finishes_the_message_in_hand_and_commits_its_offset(settings: Settings) -> None:
    topic = f"test-stop-{uuid.uuid4().hex[:8]}"
    await create_topics(settings, {topic: {}, f"{topic}.dlq": {}})
    runtime = Runtime(settings, service="stop-test")
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow(body: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(1.5)
        finished.set()

    runtime.broker.subscriber(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                              ack_policy=AckPolicy.NACK_ON_ERROR)(slow)  # fmt: skip
    await runtime.broker.start()
    await runtime.broker.publish({"n": 1}, topic, partition=0)
    await asyncio.wait_for(started.wait(), 30)
    await runtime.broker.stop()  # what Runtime.stop does first, on SIGTERM
    assert finished.is_set(), "stop returned before the message in hand was finished"

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=f"g-{topic}")
    await consumer.start()
    try:
        committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()
    assert committed == 1


async def test_publish_all_delivers_every_message_in_order_per_key(settings: Settings) -> None:
    topic = f"test-fanout-{uuid.uuid4().hex[:8]}"
    await create_topics(settings, {topic: {}})
    broker = make_broker(settings, service="fanout-test")
    await broker.start()
    try:
        sent = [(f"subscriber-{n % 7}".encode(), {"n": n}) for n in range(600)]
        count = await publish_all(broker.publish(body, topic, key=key, no_confirm=True) for key, body in sent)
    finally:
        await broker.stop()
    assert count == 600
    records = await read_records(settings, topic, want=600)
    assert len(records) == 600
    for key in {key for key, _body in sent}:
        got = [json.loads(r.value)["n"] for r in records if r.key == key]
        assert got == [body["n"] for k, body in sent if k == key]  # every message of the key, in the order sent
