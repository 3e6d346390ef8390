"""Metrics, the correlation id, graceful stop and topic administration on the real broker of the test stack."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from faststream.middlewares import AckPolicy
from prometheus_client.parser import text_string_to_metric_families

from schemas import Buyer, ContractNature, Notice, NoticeKind, Topic
from services.classifier.app import ClassifierService
from services.platform.dlq_replay import REPLAY_GROUP, replay_dead_letters
from services.platform.topics import read_topics, table
from services.runtime.broker import create_topics, ensure_topics
from services.runtime.cluster import ClusterReader
from services.runtime.dlq import BadInput
from services.runtime.metrics import REGISTRY, ConsumerLag
from services.runtime.service import Runtime
from services.runtime.settings import Settings
from tests.integration.kafka_records import read_records
from tests.integration.polling import eventually
from tests.integration.test_webhook_delivery import served

pytestmark = pytest.mark.integration

TRACE = "tw-correlation-id"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# Published long ago: these notices reach the shared notices.classified topic, and tests that store every notice
# they read from it and count those of the last days (the subscription preview) must not see them.
_LONG_AGO = datetime(2019, 3, 1, tzinfo=UTC)


def _notice(notice_id: str) -> Notice:
    source, source_id = notice_id.split(":")
    return Notice(
        notice_id=notice_id, version="1", source=source, source_id=source_id, kind=NoticeKind.COMPETITION,
        title="Entretien de la voirie communale", language="fr", buyer=Buyer(name="Ville de Toulouse"),
        contract_nature=ContractNature.WORKS, cpv_main="45233141", published_at=_LONG_AGO,
    )  # fmt: skip


async def _produce(settings: Settings, topic: str, messages: list[tuple[bytes | None, bytes, dict[str, str]]]) -> None:
    """Publish as an outside client would: raw bytes, no middleware of ours."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value, headers in messages:
            await producer.send_and_wait(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])
    finally:
        await producer.stop()


async def _scrape(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient(base_url=base_url, trust_env=False) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _backlog(settings: Settings, group: str, topic: str) -> int:
    reader = ClusterReader(settings.kafka_bootstrap_servers)
    await reader.start()
    try:
        layouts = await reader.layouts([topic])
        return sum(p.lag for p in await reader.offsets(group, list(layouts.values())))
    finally:
        await reader.close()


async def test_the_classifier_carries_the_correlation_id_on_and_its_metrics_count_each_notice(
    settings: Settings,
) -> None:
    await ensure_topics(settings)
    service = ClassifierService(settings)
    topic = Topic.NOTICES_RECEIVED.value
    # The shared broker may hold notices other tests left unread: the classifier's group reads them too.
    backlog = await _backlog(settings, service.runtime.group_id, topic)
    traced, untraced = f"test:{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    async with served(service.asgi()) as base_url:
        await _produce(
            settings,
            topic,
            [
                (traced.encode(), _notice(traced).model_dump_json().encode(), {TRACE: "trace-from-ingest"}),
                (untraced.encode(), _notice(untraced).model_dump_json().encode(), {}),
            ],
        )
        [first] = await read_records(settings, Topic.NOTICES_CLASSIFIED.value, want=1, key=traced.encode())
        [second] = await read_records(settings, Topic.NOTICES_CLASSIFIED.value, want=1, key=untraced.encode())

        async def counted() -> dict[Any, float] | None:
            samples = await _scrape(base_url)
            done = _sample(samples, "tenderwatch_messages_processed_total", service="classifier", topic=topic)
            return samples if done >= backlog + 2 else None

        samples = await eventually(counted, "the classifier's metrics to count both notices")

        async def caught_up() -> dict[str, float] | None:
            lags = {
                dict(labels)["partition"]: value
                for (name, labels), value in (await _scrape(base_url)).items()
                if name == "tenderwatch_consumer_lag" and labels >= {("service", "classifier"), ("topic", topic)}
            }
            return lags if len(lags) == settings.kafka_topic_partitions and sum(lags.values()) == 0 else None

        await eventually(caught_up, "the consumer lag of notices.received to reach 0")

    headers = {key: value.decode() for key, value in first.headers}
    assert headers[TRACE] == "trace-from-ingest"
    assert headers["tw-notice-id"] == traced
    minted = dict(second.headers)[TRACE].decode()
    assert len(minted) == 32 and minted != "trace-from-ingest"
    assert dict(second.headers)["tw-notice-id"].decode() == untraced

    labels = {"service": "classifier", "topic": topic}
    assert _sample(samples, "tenderwatch_messages_consumed_total", **labels) == backlog + 2
    assert _sample(samples, "tenderwatch_messages_processed_total", **labels) == backlog + 2
    assert _sample(samples, "tenderwatch_messages_failed_total", **labels) == 0
    assert _sample(samples, "tenderwatch_processing_seconds_count", **labels) == backlog + 2


async def test_failures_retries_and_dead_letters_are_counted_and_dead_letters_keep_the_trace(
    settings: Settings,
) -> None:
    topic, out = _unique("test-obs"), _unique("test-obs-out")
    await create_topics(settings, {topic: {}, f"{topic}.dlq": {}, out: {}})
    service = _unique("obs")
    runtime = Runtime(settings, service=service)
    runtime.dead_letters.backoff_seconds = 0.05
    flaky_calls = 0

    async def handle(body: dict[str, Any]) -> None:
        nonlocal flaky_calls
        if body.get("bad"):
            raise BadInput("not-a-notice", "no notice in this message")
        if body.get("flaky"):
            flaky_calls += 1
            if flaky_calls == 1:
                raise ConnectionError("database went away")
        await runtime.broker.publish({"echo": body}, out)

    runtime.broker.subscriber(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                              ack_policy=AckPolicy.NACK_ON_ERROR)(handle)  # fmt: skip
    async with served(runtime.asgi()) as base_url:
        await _produce(
            settings,
            topic,
            [
                (b"k", b'{"n": 1}', {TRACE: "t-1"}),
                (b"k", b'{"bad": true}', {TRACE: "t-bad"}),
                (b"k", b'{"flaky": true}', {TRACE: "t-flaky"}),
                (b"k", b'{"n": 2}', {}),
            ],
        )
        echoes = await read_records(settings, out, want=3)
        dead = await read_records(settings, f"{topic}.dlq", want=1)
        samples = await eventually(
            lambda: _counted(base_url, service, topic, processed=3), "the three messages handled to be counted"
        )

    assert len(echoes) == 3 and len(dead) == 1
    traces = {json.loads(r.value)["echo"].get("n", 0): dict(r.headers)[TRACE].decode() for r in echoes}
    assert (traces[1], traces[0]) == ("t-1", "t-flaky")  # the flaky message kept its trace when retried
    assert len(traces[2]) == 32  # the message without a trace got a new one
    assert dead[0].value == b'{"bad": true}'
    assert dict(dead[0].headers)[TRACE] == b"t-bad"
    labels = {"service": service, "topic": topic}
    assert _sample(samples, "tenderwatch_messages_consumed_total", **labels) == 5  # the flaky one came twice
    assert _sample(samples, "tenderwatch_messages_processed_total", **labels) == 3
    assert _sample(samples, "tenderwatch_messages_failed_total", **labels) == 2
    assert _sample(samples, "tenderwatch_messages_dead_lettered_total", reason="not-a-notice", **labels) == 1


async def _counted(base_url: str, service: str, topic: str, *, processed: int) -> dict[Any, float] | None:
    samples = await _scrape(base_url)
    dead = _sample(
        samples, "tenderwatch_messages_dead_lettered_total", service=service, topic=topic, reason="not-a-notice"
    )
    done = _sample(samples, "tenderwatch_messages_processed_total", service=service, topic=topic)
    return samples if done >= processed and dead >= 1 else None


async def test_consumer_lag_is_the_log_end_minus_the_groups_committed_offset(settings: Settings) -> None:
    topic, group = _unique("test-lag"), _unique("g-lag")
    await create_topics(settings, {topic: {}})
    for partition, count in ((0, 5), (1, 3)):
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            for n in range(count):
                await producer.send_and_wait(topic, b"%d" % n, partition=partition)
        finally:
            await producer.stop()
    await _commit(settings, group, {TopicPartition(topic, 0): 2})

    service = _unique("lag")
    lag = ConsumerLag(service, settings.kafka_bootstrap_servers, max_age=0)
    lag.track(group, topic)
    try:
        await lag.refresh()
        first = {p: _lag(service, topic, p) for p in range(3)}
        await _commit(settings, group, {TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 1})
        await lag.refresh()
        second = _lag(service, topic, 1)
    finally:
        await lag.close()
    assert first == {0: 3.0, 1: 3.0, 2: 0.0}  # partition 1: never committed, so all of it
    assert second == 2.0

    [report] = await read_topics(settings.kafka_bootstrap_servers, [topic])
    assert (report.partitions, report.replication, report.cleanup_policy, report.end) == (3, 1, "delete", 8)
    assert [g.group for g in report.groups] == [group]
    lines = [line.split() for line in table([report], by_partition=True)]
    assert lines[1] == [topic, "3", "1", "delete", group, "6", "8", "2"]
    assert lines[2:] == [["p0", "5", "5", "0"], ["p1", "1", "3", "2"], ["p2", "-", "0", "0"]]


def _lag(service: str, topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "tenderwatch_consumer_lag", {"service": service, "topic": topic, "partition": str(partition)}
    )


async def _commit(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group,
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
    finally:
        await consumer.stop()


async def test_topics_are_created_once_when_instances_start_together(settings: Settings) -> None:
    names = {_unique("test-create"): {}, _unique("test-create-compacted"): {"cleanup.policy": "compact"}}
    created = await asyncio.gather(*(create_topics(settings, names) for _ in range(4)))
    assert sorted(name for batch in created for name in batch) == sorted(names)
    assert await create_topics(settings, names) == []
    reports = {r.topic: r for r in await read_topics(settings.kafka_bootstrap_servers, list(names))}
    assert [(reports[n].partitions, reports[n].cleanup_policy) for n in names] == [(3, "delete"), (3, "compact")]


async def test_hooks_run_after_the_message_in_hand_is_finished_and_can_still_publish(settings: Settings) -> None:
    topic, out = _unique("test-stop"), _unique("test-stop-out")
    await create_topics(settings, {topic: {}, f"{topic}.dlq": {}, out: {}})
    runtime = Runtime(settings, service=_unique("stop"))
    events: list[str] = []
    started = asyncio.Event()

    async def slow(body: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(1.0)
        events.append("handled")

    async def last_words() -> None:  # like the notifier publishing a delivery that ended during shutdown
        events.append("hook")
        await runtime.broker.publish({"delivered": True}, out, key=b"k")

    runtime.broker.subscriber(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                              ack_policy=AckPolicy.NACK_ON_ERROR)(slow)  # fmt: skip
    runtime.on_stop(last_words)
    await runtime.start()
    await runtime.broker.publish({"n": 1}, topic, partition=0)
    await asyncio.wait_for(started.wait(), 30)
    await runtime.stop()

    assert events == ["handled", "hook"]
    [record] = await read_records(settings, out, want=1)
    assert json.loads(record.value) == {"delivered": True}


async def test_dead_letters_are_replayed_once_with_their_bytes_and_headers(settings: Settings) -> None:
    topic = _unique("test-replay")
    dlq = f"{topic}.dlq"
    await create_topics(settings, {topic: {}, dlq: {}})
    runtime = Runtime(settings, service=_unique("replay"))

    async def refuse(body: dict[str, Any]) -> None:
        raise BadInput("not-a-notice", "refused")

    runtime.broker.subscriber(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                              ack_policy=AckPolicy.NACK_ON_ERROR)(refuse)  # fmt: skip
    originals = [
        (b"key-1", b'{"n": 1}', {TRACE: "c-1", "x-custom": "a"}),
        (None, b'{"n": 2}', {TRACE: "c-2"}),
    ]
    await runtime.start()
    try:
        for key, value, headers in originals:  # as the services publish
            await runtime.broker.publish(value, topic, key=key, headers=headers)
        assert len(await read_records(settings, dlq, want=2)) == 2
    finally:
        await runtime.stop()

    dry = await replay_dead_letters(settings.kafka_bootstrap_servers, dlq, dry_run=True)
    assert (dry.replayed, dict(dry.destinations), dict(dry.reasons)) == (2, {topic: 2}, {"not-a-notice": 2})
    first = await replay_dead_letters(settings.kafka_bootstrap_servers, dlq)
    second = await replay_dead_letters(settings.kafka_bootstrap_servers, dlq)
    assert (first.replayed, first.pending, dict(first.destinations)) == (2, 2, {topic: 2})
    assert second.replayed == 0

    records = await read_records(settings, topic, want=5, timeout=5.0)
    assert len(records) == 4  # the two originals and, once each, the two replayed
    for key, value, headers in originals:
        original, replayed = [(r.key, dict(r.headers)) for r in records if r.value == value]
        # The replayed copy is the original again: same bytes, key and headers, the dead-letter ones taken off.
        assert replayed == original
        assert original[0] == key
        assert original[1].items() >= {k: v.encode() for k, v in headers.items()}.items()

    reader = ClusterReader(settings.kafka_bootstrap_servers)
    await reader.start()
    try:
        positions = await reader.offsets(REPLAY_GROUP, list((await reader.layouts([dlq])).values()))
    finally:
        await reader.close()
    assert sum(p.committed or 0 for p in positions) == 2
    assert sum(p.lag for p in positions) == 0


def test_the_commands_show_the_topics_and_replay_a_dead_letter_topic(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.platform.cli import main

    topic = _unique("test-cli")
    dlq = f"{topic}.dlq"
    dead_letter = {TRACE: "c-cli", "tw-error": "boom", "tw-error-reason": "bad-input", "tw-source-topic": topic}

    async def prepare() -> None:
        await ensure_topics(settings)
        await create_topics(settings, {topic: {}, dlq: {}})
        await _produce(settings, dlq, [(b"k", b'{"n": 1}', dead_letter)])

    asyncio.run(prepare())
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers)

    assert main(["topics"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TOPIC", "PARTITIONS", "REPLICATION", "CLEANUP", "GROUP", "COMMITTED", "END", "LAG"]
    listed = {line.split()[0]: line.split()[1:4] for line in lines[1:]}
    assert set(listed) == {name for t in Topic for name in (t.value, t.dlq)}
    assert listed["subscriptions.changes"] == ["3", "1", "compact"]
    assert listed["notices.received"] == ["3", "1", "delete"]

    assert main(["dlq", "replay", dlq, "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"would replay 1 dead letter(s) from {dlq}: {topic} 1",
        "by reason: bad-input 1",
        "dry run: nothing was published and nothing committed",
    ]
    assert main(["dlq", "replay", dlq]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"replayed 1 dead letter(s) from {dlq}: {topic} 1"
    assert main(["dlq", "replay", dlq]) == 0
    assert capsys.readouterr().out.splitlines() == [f"nothing to replay in {dlq}: no dead letter since the last replay"]
    [replayed] = asyncio.run(read_records(settings, topic, want=1))
    assert (replayed.key, replayed.value, dict(replayed.headers)) == (b"k", b'{"n": 1}', {TRACE: b"c-cli"})

    assert main(["dlq", "replay", topic]) == 2
    assert "is not a dead-letter topic" in capsys.readouterr().err
    assert main(["dlq", "replay", f"{_unique('absent')}.dlq"]) == 2
    assert "there is no topic" in capsys.readouterr().err


async def test_a_document_posted_to_ingest_starts_its_trace_with_the_callers_id_or_a_new_one(
    settings: Settings,
) -> None:
    from services.ingest.app import Ingest

    ingest = Ingest(settings)
    given, fresh = f"test:{uuid.uuid4().hex}", f"test:{uuid.uuid4().hex}"
    before = REGISTRY.get_sample_value(
        "tenderwatch_notices_ingested_total", {"service": "ingest", "source_format": "canonical"}
    )
    async with served(ingest.asgi()) as base_url, httpx.AsyncClient(base_url=base_url, trust_env=False) as client:
        traced = await client.post(
            "/v1/documents",
            content=_notice(given).model_dump_json(),
            headers={"content-type": "application/json", "X-Correlation-Id": "client-trace-1"},
        )
        untraced = await client.post(
            "/v1/documents", content=_notice(fresh).model_dump_json(), headers={"content-type": "application/json"}
        )
    assert (traced.status_code, untraced.status_code) == (202, 202)
    assert traced.headers["X-Correlation-Id"] == "client-trace-1"
    minted = untraced.headers["X-Correlation-Id"]
    assert len(minted) == 32
    [first] = await read_records(settings, Topic.NOTICES_RECEIVED.value, want=1, key=given.encode())
    [second] = await read_records(settings, Topic.NOTICES_RECEIVED.value, want=1, key=fresh.encode())
    assert dict(first.headers)[TRACE] == b"client-trace-1"
    assert dict(first.headers)["tw-notice-id"] == given.encode()
    assert dict(second.headers)[TRACE] == minted.encode()
    after = REGISTRY.get_sample_value(
        "tenderwatch_notices_ingested_total", {"service": "ingest", "source_format": "canonical"}
    )
    assert (after or 0) - (before or 0) == 2
