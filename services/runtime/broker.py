"""The Kafka broker every service talks through, and the topics it needs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker

from schemas import Topic
from services.runtime.settings import Settings

_log = logging.getLogger(__name__)


def make_broker(settings: Settings, *, service: str, middlewares: Sequence[Any] = ()) -> KafkaBroker:
    if not settings.kafka_bootstrap_servers:
        raise RuntimeError(
            "KAFKA_BOOTSTRAP_SERVERS is not set: start the platform with `tenderwatch run` (embedded broker) "
            "or point KAFKA_BOOTSTRAP_SERVERS at a Kafka cluster"
        )
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"tenderwatch-{service}",
        enable_idempotence=settings.kafka_enable_idempotence,
        acks="all",
        middlewares=middlewares,
        graceful_timeout=15.0,
        logger=logging.getLogger(f"tenderwatch.{service}.broker"),
        # FastStream's "Received"/"Processed" lines, two per message: debug only. The handlers log what they did,
        # with the notice id and correlation id, and /metrics counts every message.
        log_level=logging.DEBUG,
    )


async def publish_all(sends: Iterable[Awaitable[Any]]) -> int:
    """Queue every message, then wait for the broker to acknowledge them all; returns how many.

    `sends` are `publish(..., no_confirm=True)` calls (a publisher's or the broker's), which return once the message
    is queued with the producer: awaited in turn, they keep their order, and the producer keeps each partition's
    order, retries included (one request in flight per broker, a partition muted while its batch is). One round trip
    for the lot instead of one per message: on the embedded broker, 3,000 messages take 0.26 s against 2.1 s
    acknowledged one at a time (`python -m bench.fanout`). Raises the first failure once every send has settled, so
    that the caller commits nothing the broker did not take.
    """
    pending: list[asyncio.Future[Any]] = []
    for send in sends:
        queued = await send
        if not isinstance(queued, asyncio.Future):
            raise TypeError("publish_all takes publish(..., no_confirm=True) calls: this one waited for its own ack")
        pending.append(queued)
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return len(pending)


def _topic_configs(topic: Topic) -> dict[str, str]:
    return {"cleanup.policy": "compact"} if topic.compacted else {}


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every topic of the platform (and its dead-letter topic) that does not exist yet.

    Idempotent, safe to run from every instance at start. Returns the names it created.
    """
    wanted: dict[str, dict[str, str]] = {}
    for topic in Topic:
        wanted[topic.value] = _topic_configs(topic)
        wanted[topic.dlq] = {}
    return await create_topics(settings, wanted)


async def create_topics(settings: Settings, topics: dict[str, dict[str, str]]) -> list[str]:
    """Create the named topics (name -> topic configs) that do not exist yet; returns those it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="tenderwatch-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
                topic_configs=configs,
            )
            for name, configs in topics.items()
            if name not in existing
        ]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(missing)
            for name, code, *_ in response.topic_errors:
                if code == 0:
                    created.append(name)
                elif code != TopicAlreadyExistsError.errno:
                    raise RuntimeError(f"could not create topic {name!r}: Kafka error code {code}")
        if created:
            _log.info("created topics", extra={"topics": ",".join(sorted(created))})
        return created
    finally:
        await admin.close()
