"""Matcher: every instance holds every subscription in memory and matches each classified notice.

Subscriptions come from the compacted `subscriptions.changes` topic, read from the beginning by every
instance without a consumer group (so each instance has them all); classified notices are shared among
instances by a consumer group. Notices wait until the index has caught up with the changes that existed
when the instance started, so a restart never matches against a half-built index.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka.annotations import KafkaMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from schemas import ClassifiedNotice, Match, SubscriptionChange, Topic
from schemas.filtering.query import KeywordQuerySyntaxError
from services.matcher.index import SubscriptionIndex
from services.matcher.matches import build_matches
from services.runtime.broker import publish_all
from services.runtime.dlq import BadInput
from services.runtime.huge_pages import collapse_heap
from services.runtime.metrics import MATCHER_SUBSCRIPTIONS, MATCHES
from services.runtime.service import Runtime
from services.runtime.settings import Settings

_log = logging.getLogger(__name__)

SERVICE = "matcher"
_CATCH_UP_WAIT_SECONDS = 30.0


def _move_onto_huge_pages() -> None:
    """The index is read at random for every notice: on huge pages, far fewer of those reads miss the TLB
    (`services/runtime/huge_pages.py`; the decision's p99 -25% at a million subscriptions). Once, before the first
    notice: it blocks about 1.5 s per GiB."""
    collapse = collapse_heap()
    if collapse.unsupported:
        _log.info("subscription index left on ordinary pages", extra={"reason": collapse.unsupported})
        return
    _log.info(
        "subscription index moved onto huge pages",
        extra={
            "mebibytes": collapse.collapsed_bytes >> 20,
            "seconds": round(collapse.seconds, 2),
            "refused_ranges": collapse.refused_ranges,
        },
    )


class Matcher:
    def __init__(self, settings: Settings) -> None:
        self.runtime = Runtime(settings, service=SERVICE)
        self.index = SubscriptionIndex()
        MATCHER_SUBSCRIPTIONS.labels(service=SERVICE).set_function(lambda: len(self.index))
        self._matches_published = MATCHES.labels(service=SERVICE)
        self._caught_up = asyncio.Event()
        self._catch_up_targets: dict[int, int] = {}
        self._alerts = self.runtime.publisher(
            Topic.ALERTS_MATCHED,
            schema=Match,
            description="One match per subscriber and notice version, keyed by subscriber_id",
        )
        self.runtime.consume(
            Topic.SUBSCRIPTIONS_CHANGES,
            self._on_change,
            description="SubscriptionChange keyed by subscription_id; an empty value (tombstone) deletes it",
            every_instance=True,
        )
        self.runtime.consume(Topic.NOTICES_CLASSIFIED, self._on_notice)
        self.runtime.on_start(self._plan_catch_up)
        self.runtime.add_readiness_check("subscription index", self._caught_up.is_set)

    async def _plan_catch_up(self) -> None:
        """Note where `subscriptions.changes` ends now: the index is ready when it has read that far."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.runtime.settings.kafka_bootstrap_servers)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(Topic.SUBSCRIPTIONS_CHANGES.value) or set()
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(Topic.SUBSCRIPTIONS_CHANGES.value) or set()
            ends = await consumer.end_offsets(
                [TopicPartition(Topic.SUBSCRIPTIONS_CHANGES.value, p) for p in partitions]
            )
        finally:
            await consumer.stop()
        self._catch_up_targets = {tp.partition: offset for tp, offset in ends.items() if offset > 0}
        self._check_caught_up()

    def _check_caught_up(self) -> None:
        if not self._catch_up_targets and not self._caught_up.is_set():
            started = time.perf_counter()
            self.index.compact()  # built one change at a time, its sets were scattered over the heap
            compacted_seconds = time.perf_counter() - started
            # The index is millions of long-lived objects: out of the collector's sight, a full collection no longer
            # walks them all in the middle of a notice (seconds at a million subscriptions).
            gc.collect()
            gc.freeze()
            if self.runtime.settings.matcher_huge_pages:
                _move_onto_huge_pages()
            self._caught_up.set()
            _log.info(
                "subscription index ready",
                extra={"subscriptions": len(self.index), "compacted_seconds": round(compacted_seconds, 2)},
            )

    async def _on_change(self, msg: KafkaMessage) -> None:
        # Raw bytes: an empty value is a tombstone, which no decoder would turn into a model.
        record = msg.raw_message
        assert not isinstance(record, tuple)  # one record per call: this subscriber is not batched
        body = msg.body
        subscription_id = record.key.decode() if record.key else None
        try:
            if not body:
                if subscription_id:
                    self.index.remove(subscription_id)
            else:
                change = SubscriptionChange.model_validate_json(body)
                try:
                    self.index.upsert(change.subscription)
                except KeywordQuerySyntaxError as exc:
                    # The api refuses such queries; one that gets here anyway goes to the dead-letter topic.
                    raise BadInput(
                        "bad-keyword-query", f"subscription {change.subscription.subscription_id}: {exc}"
                    ) from exc
        finally:
            # A change that goes to the dead-letter topic still counts as read for the catch-up.
            target = self._catch_up_targets.get(record.partition)
            if target is not None and record.offset + 1 >= target:
                del self._catch_up_targets[record.partition]
                self._check_caught_up()

    async def _on_notice(self, notice: ClassifiedNotice) -> None:
        try:
            await asyncio.wait_for(self._caught_up.wait(), _CATCH_UP_WAIT_SECONDS)
        except TimeoutError:
            raise RuntimeError("the subscription index has not caught up yet") from None
        now = datetime.now(UTC)
        hits = self.index.match(notice, now=now)
        matches = build_matches(notice, hits, now=now)
        # All in flight at once: a notice can concern thousands of subscribers, and one round trip each would take
        # seconds. The notice's offset is committed only once every alert is acknowledged.
        published = await publish_all(
            self._alerts.publish(match, key=match.subscriber_id.encode(), no_confirm=True) for match in matches
        )
        self._matches_published.inc(published)
        _log.info(
            "matched notice",
            extra={"notice_id": notice.notice_id, "subscriptions": len(hits), "subscribers": published},
        )

    async def _stats(self, _request: Request) -> JSONResponse:
        return JSONResponse({"subscriptions": len(self.index), "ready": self._caught_up.is_set()})

    def asgi(self) -> Starlette:
        routes = [*self.runtime.health_routes(), Route("/v1/index", self._stats)]
        return Starlette(routes=routes, lifespan=self.runtime.lifespan)
