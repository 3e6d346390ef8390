"""`tenderwatch dlq replay TOPIC`: send the messages of a dead-letter topic back to the topics they came from.

Each dead letter goes back with its original bytes, key and headers (those dead-lettering added taken off, the
correlation id kept) to the topic its `tw-source-topic` header names. A replay reads as far as the dead-letter
topic reached when it began, so a message that fails again lands beyond that point and waits for the next replay.
It commits its own consumer group, `tenderwatch-dlq-replay`, once each batch is stored on the source topics: a
second replay sends nothing twice, and one interrupted resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from services.runtime.dlq import DEAD_LETTER_HEADERS, HEADER_REASON, HEADER_SOURCE_TOPIC

REPLAY_GROUP = "tenderwatch-dlq-replay"
_SUFFIX = ".dlq"
_BATCH = 500
_STALL_SECONDS = 30.0  # no new message for this long before reaching the end: the broker is not answering


class ReplayError(RuntimeError):
    """The replay could not be done; what is stated is what to fix."""


@dataclass
class ReplaySummary:
    dead_letter_topic: str
    dry_run: bool
    pending: int = 0  # dead letters not replayed before this run, at most (compaction may leave gaps)
    destinations: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def replayed(self) -> int:
        return sum(self.destinations.values())

    def lines(self) -> list[str]:
        if not self.replayed:
            return [f"nothing to replay in {self.dead_letter_topic}: no dead letter since the last replay"]
        verb = "would replay" if self.dry_run else "replayed"
        to = ", ".join(f"{topic} {n}" for topic, n in sorted(self.destinations.items()))
        out = [f"{verb} {self.replayed} dead letter(s) from {self.dead_letter_topic}: {to}"]
        out.append("by reason: " + ", ".join(f"{reason} {n}" for reason, n in self.reasons.most_common()))
        if self.dry_run:
            out.append("dry run: nothing was published and nothing committed")
        return out


def replay_of(dead_letter_topic: str, headers: Sequence[tuple[str, bytes]]) -> tuple[str, list[tuple[str, bytes]]]:
    """Where a dead letter goes back to, and the headers it goes back with."""
    found = {key: value for key, value in headers}
    source = found.get(HEADER_SOURCE_TOPIC, b"").decode() or dead_letter_topic.removesuffix(_SUFFIX)
    return source, [(key, value) for key, value in headers if key not in DEAD_LETTER_HEADERS]


def _reason(headers: Sequence[tuple[str, bytes]]) -> str:
    return next((value.decode() for key, value in headers if key == HEADER_REASON), "unknown")


async def replay_dead_letters(
    bootstrap_servers: str, dead_letter_topic: str, *, dry_run: bool = False, progress: TextIO = sys.stderr
) -> ReplaySummary:
    if not dead_letter_topic.endswith(_SUFFIX) or dead_letter_topic == _SUFFIX:
        raise ReplayError(f"{dead_letter_topic!r} is not a dead-letter topic: give one such as notices.received.dlq")
    summary = ReplaySummary(dead_letter_topic, dry_run)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id=REPLAY_GROUP,
        group_id=REPLAY_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = None if dry_run else AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await consumer.start()
    try:
        if producer is not None:
            await producer.start()
        partitions = await _partitions(consumer, dead_letter_topic)
        consumer.assign(partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        starts = {tp: await consumer.position(tp) for tp in partitions}  # the group's committed offset, or the start
        summary.pending = sum(max(ends[tp] - starts[tp], 0) for tp in partitions)
        bar = _Progress(summary, progress)
        await _replay(consumer, producer, ends, summary, bar)
        bar.finish()
    finally:
        try:
            if producer is not None:
                await producer.stop()
        finally:
            await consumer.stop()
    return summary


async def _replay(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer | None,
    ends: dict[TopicPartition, int],
    summary: ReplaySummary,
    bar: _Progress,
) -> None:
    active = [tp for tp in ends if await consumer.position(tp) < ends[tp]]
    moved_at = time.monotonic()
    while active:
        batches = await consumer.getmany(*active, timeout_ms=1000, max_records=_BATCH)
        stored: list[asyncio.Future[object]] = []
        reached: dict[TopicPartition, int] = {}
        for tp, records in batches.items():
            for record in records:
                if record.offset >= ends[tp]:
                    break  # dead-lettered after the replay began
                destination, headers = replay_of(summary.dead_letter_topic, record.headers)
                if producer is not None:
                    stored.append(await producer.send(destination, record.value, key=record.key, headers=headers))
                summary.destinations[destination] += 1
                summary.reasons[_reason(record.headers)] += 1
                reached[tp] = record.offset + 1
        await asyncio.gather(*stored)  # every message of the batch is stored before its offsets are committed
        if producer is not None and reached:
            await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in reached.items()})
        if reached:
            moved_at = time.monotonic()
            bar.show()
        elif time.monotonic() - moved_at > _STALL_SECONDS:
            raise ReplayError(f"no dead letter could be read for {_STALL_SECONDS:.0f} s; is the broker up?")
        active = [tp for tp in active if await consumer.position(tp) < ends[tp]]


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        await consumer._client.force_metadata_update()  # a consumer only learns of topics it was asked about
        found = consumer.partitions_for_topic(topic)
    if not found:
        raise ReplayError(f"there is no topic {topic!r} (see `tenderwatch topics`)")
    return [TopicPartition(topic, p) for p in sorted(found)]


class _Progress:
    """A line rewritten in place on a terminal, else a line per batch."""

    def __init__(self, summary: ReplaySummary, stream: TextIO) -> None:
        self.summary, self.stream = summary, stream
        self.interactive = stream.isatty()
        self.shown = False

    def show(self) -> None:
        verb = "reading" if self.summary.dry_run else "replaying"
        line = f"{verb} {self.summary.dead_letter_topic}: {self.summary.replayed}/{self.summary.pending}"
        self.stream.write(f"\r{line}" if self.interactive else f"{line}\n")
        self.stream.flush()
        self.shown = True

    def finish(self) -> None:
        if self.interactive and self.shown:
            self.stream.write("\n")
            self.stream.flush()
