"""Metrics without a broker: message counts by outcome, delivery outcomes, lag arithmetic, the exposition."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faststream import ContextRepo
from faststream.message import StreamMessage

from services.runtime.cluster import PartitionOffsets
from services.runtime.metrics import REGISTRY, MessageMetrics, delivery_outcome, exposition, record_delivery

# The names and types the dashboards and autoscalers are built on.
CONTRACT = {
    "tenderwatch_messages_consumed_total": "counter",
    "tenderwatch_messages_processed_total": "counter",
    "tenderwatch_messages_failed_total": "counter",
    "tenderwatch_messages_dead_lettered_total": "counter",
    "tenderwatch_processing_seconds": "histogram",
    "tenderwatch_consumer_lag": "gauge",
    "tenderwatch_deliveries_total": "counter",
    "tenderwatch_delivery_seconds": "histogram",
    "tenderwatch_matcher_subscriptions": "gauge",
    "tenderwatch_matches_total": "counter",
    "tenderwatch_notices_ingested_total": "counter",
}


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _message(topic: str) -> StreamMessage[Any]:
    record = ConsumerRecord(topic, 1, 3, 0, 0, None, b"{}", None, 0, 2, [])
    return StreamMessage(record, b"{}", headers={})


async def test_each_attempt_is_consumed_then_processed_or_failed_and_timed() -> None:
    service, topic = f"svc-{uuid.uuid4().hex[:6]}", "notices.received"
    middleware = MessageMetrics(service)

    async def fine(_msg: StreamMessage[Any]) -> str:
        return "ok"

    async def broken(_msg: StreamMessage[Any]) -> None:
        raise ConnectionError("database went away")

    for handler in (fine, fine, broken):
        msg = _message(topic)
        with contextlib.suppress(ConnectionError):
            await middleware(msg, context=ContextRepo()).consume_scope(handler, msg)
    labels = {"service": service, "topic": topic}
    assert _value("tenderwatch_messages_consumed_total", **labels) == 3
    assert _value("tenderwatch_messages_processed_total", **labels) == 2
    assert _value("tenderwatch_messages_failed_total", **labels) == 1
    assert _value("tenderwatch_processing_seconds_count", **labels) == 3


def test_delivery_statuses_become_the_outcomes_dashboards_know() -> None:
    assert [delivery_outcome(s) for s in ("sent", "retrying", "failed", "suppressed")] == [
        "delivered",
        "retry",
        "failed",
        "suppressed",
    ]
    service = f"notifier-{uuid.uuid4().hex[:6]}"
    record_delivery(service, channel="webhook", status="sent", seconds=0.2)
    record_delivery(service, channel="webhook", status="retrying", seconds=15.0)
    record_delivery(service, channel="email", status="sent", seconds=0.05)
    assert _value("tenderwatch_deliveries_total", service=service, channel="webhook", outcome="delivered") == 1
    assert _value("tenderwatch_deliveries_total", service=service, channel="webhook", outcome="retry") == 1
    assert _value("tenderwatch_delivery_seconds_count", service=service, channel="webhook") == 2
    assert _value("tenderwatch_delivery_seconds_bucket", service=service, channel="webhook", le="0.25") == 1


def test_the_exposition_is_prometheus_text_with_the_contract_names() -> None:
    record_delivery("expo", channel="email", status="failed", seconds=1.0)
    body, content_type = exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'tenderwatch_deliveries_total{channel="email",outcome="failed",service="expo"} 1.0' in text
    declared = {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert declared | CONTRACT == declared  # every name of the contract, with its type
    assert declared["process_cpu_seconds_total"] == "counter"  # what one instance costs


@pytest.mark.parametrize(
    ("start", "end", "committed", "lag"),
    [
        (0, 120, 100, 20),  # behind by 20
        (0, 120, 120, 0),  # caught up
        (0, 120, None, 120),  # never committed: reads from the start
        (50, 120, None, 70),  # ... which retention moved
        (50, 120, 10, 70),  # committed offset fell out of retention: resumes at the start
        (0, 0, None, 0),  # empty partition
    ],
)
def test_lag_counts_from_where_the_group_will_read(start: int, end: int, committed: int | None, lag: int) -> None:
    assert PartitionOffsets("t", 0, start=start, end=end, committed=committed).lag == lag
