"""Prometheus metrics of every service, served on `GET /metrics` beside /health and /ready.

The names are a contract with the dashboards and the autoscalers (deploy/): every metric has a `service` label.
For each topic a service consumes, `consumed = processed + failed`: each attempt at a message counts as consumed,
and ends either processed (the handler returned; its offset is committed) or failed (the handler raised; it is
retried, or dead-lettered and counted in `tenderwatch_messages_dead_lettered_total`). Consumer lag is read from
the cluster when scraped, at most every few seconds, and never on the path of a message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from services.runtime.cluster import ClusterReader

_log = logging.getLogger(__name__)

# No `_created` twin of every counter and histogram: Prometheus does not need them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()
# CPU, memory and file descriptors of the process, and the interpreter's collector: what one instance costs.
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_DELIVERY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0)

MESSAGES_CONSUMED = Counter(
    "tenderwatch_messages_consumed", "Messages handed to a handler", ["service", "topic"], registry=REGISTRY
)
MESSAGES_PROCESSED = Counter(
    "tenderwatch_messages_processed",
    "Messages whose handler returned (offset committed)",
    ["service", "topic"],
    registry=REGISTRY,
)
MESSAGES_FAILED = Counter(
    "tenderwatch_messages_failed", "Handler attempts that raised", ["service", "topic"], registry=REGISTRY
)
MESSAGES_DEAD_LETTERED = Counter(
    "tenderwatch_messages_dead_lettered",
    "Messages sent to <topic>.dlq, by reason",
    ["service", "topic", "reason"],
    registry=REGISTRY,
)
PROCESSING_SECONDS = Histogram(
    "tenderwatch_processing_seconds",
    "How long a handler took with one message",
    ["service", "topic"],
    buckets=_SECONDS_BUCKETS,
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "tenderwatch_consumer_lag",
    "Log end offset minus the committed offset of the service's consumer group",
    ["service", "topic", "partition"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "tenderwatch_deliveries",
    "Delivery attempts by channel and outcome",
    ["service", "channel", "outcome"],
    registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "tenderwatch_delivery_seconds",
    "How long one delivery attempt took",
    ["service", "channel"],
    buckets=_DELIVERY_BUCKETS,
    registry=REGISTRY,
)
MATCHER_SUBSCRIPTIONS = Gauge(
    "tenderwatch_matcher_subscriptions", "Subscriptions in the matcher's index", ["service"], registry=REGISTRY
)
MATCHES = Counter("tenderwatch_matches", "alerts.matched messages published", ["service"], registry=REGISTRY)
NOTICES_INGESTED = Counter(
    "tenderwatch_notices_ingested",
    "New notices (or new versions) published by ingest, by source format",
    ["service", "source_format"],
    registry=REGISTRY,
)

# A delivery's status after an attempt (services/notifier/queue.py) -> the `outcome` label.
_DELIVERY_OUTCOMES = {"sent": "delivered", "retrying": "retry", "failed": "failed", "suppressed": "suppressed"}

_LAG_MAX_AGE_SECONDS = 5.0  # scrapes closer together than this share one reading
_LAG_TIMEOUT_SECONDS = 5.0


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def delivery_outcome(status: str) -> str:
    return _DELIVERY_OUTCOMES.get(status, status)


def record_delivery(service: str, *, channel: str, status: str, seconds: float) -> None:
    """One delivery attempt: its channel, the delivery's status after it, and how long the attempt took."""
    DELIVERIES.labels(service=service, channel=channel, outcome=delivery_outcome(status)).inc()
    DELIVERY_SECONDS.labels(service=service, channel=channel).observe(seconds)


class MessageMetrics:
    """Broker middleware factory: counts and times each message a subscriber hands to its handler.

    Placed inside DeadLetters, it sees the handler's own outcome: a failure it counts is then retried or
    dead-lettered by DeadLetters.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._series: dict[str, _TopicSeries] = {}

    def __call__(self, msg: Any, /, *, context: Any) -> _MessageMetricsMiddleware:
        return _MessageMetricsMiddleware(msg, context=context, owner=self)

    def series(self, topic: str) -> _TopicSeries:
        """The series of one topic, looked up once rather than on every message."""
        found = self._series.get(topic)
        if found is None:
            found = self._series[topic] = _TopicSeries(self.service, topic)
        return found


class _TopicSeries:
    def __init__(self, service: str, topic: str) -> None:
        self.consumed = MESSAGES_CONSUMED.labels(service=service, topic=topic)
        self.processed = MESSAGES_PROCESSED.labels(service=service, topic=topic)
        self.failed = MESSAGES_FAILED.labels(service=service, topic=topic)
        self.seconds = PROCESSING_SECONDS.labels(service=service, topic=topic)


class _MessageMetricsMiddleware(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: Any, owner: MessageMetrics) -> None:
        super().__init__(msg, context=context)
        self._owner = owner

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        record = msg.raw_message
        series = self._owner.series(record[0].topic if isinstance(record, tuple) else record.topic)
        series.consumed.inc()
        started = time.perf_counter()
        try:
            result = await call_next(msg)
        except Exception:
            series.failed.inc()
            raise
        finally:
            series.seconds.observe(time.perf_counter() - started)
        series.processed.inc()
        return result


class ConsumerLag:
    """The `tenderwatch_consumer_lag` series of one service: each group it consumes in, on each topic it reads."""

    def __init__(self, service: str, bootstrap_servers: str, *, max_age: float = _LAG_MAX_AGE_SECONDS) -> None:
        self._service = service
        self._bootstrap_servers = bootstrap_servers
        self._max_age = max_age
        self._groups: dict[str, set[str]] = {}
        self._reader: ClusterReader | None = None
        self._lock = asyncio.Lock()
        self._read_at = float("-inf")
        self._shown: set[tuple[str, str]] = set()

    def track(self, group: str, topic: str) -> None:
        self._groups.setdefault(group, set()).add(topic)

    async def refresh(self) -> None:
        """Read the lag again unless a recent reading will do. Bounded in time; a failure only drops the series."""
        async with self._lock:
            if not self._groups or time.monotonic() - self._read_at < self._max_age:
                return
            try:
                async with asyncio.timeout(_LAG_TIMEOUT_SECONDS):
                    lags = await self._read()
            except Exception as exc:
                _log.warning("could not read the consumer lag", extra={"error": f"{type(exc).__name__}: {exc}"})
                await self.close()  # a new connection next time
                lags = {}
            self._read_at = time.monotonic()
            for labels in self._shown - lags.keys():
                CONSUMER_LAG.remove(self._service, *labels)
            for (topic, partition), lag in lags.items():
                CONSUMER_LAG.labels(service=self._service, topic=topic, partition=partition).set(lag)
            self._shown = set(lags)

    async def _read(self) -> dict[tuple[str, str], int]:
        if self._reader is None:
            reader = ClusterReader(self._bootstrap_servers, client_id=f"tenderwatch-{self._service}-metrics")
            await reader.start()
            self._reader = reader
        lags: dict[tuple[str, str], int] = {}
        for group, topics in self._groups.items():
            layouts = await self._reader.layouts(sorted(topics))
            for offsets in await self._reader.offsets(group, list(layouts.values())):
                lags[(offsets.topic, str(offsets.partition))] = offsets.lag
        return lags

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                await reader.close()
            except Exception:
                _log.debug("closing the lag reader failed", exc_info=True)
