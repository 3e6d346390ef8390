"""What the Kafka cluster holds: topics, their layout and settings, consumer groups and how far each has read.

Read through the admin API and a consumer that joins no group, so that reading never disturbs the groups it
looks at. Offsets are always asked for named partitions: some brokers do not answer "every offset of a group".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType


@dataclass(frozen=True)
class TopicLayout:
    name: str
    partitions: tuple[int, ...]
    replication: int


@dataclass(frozen=True)
class PartitionOffsets:
    """Where one group stands on one partition."""

    topic: str
    partition: int
    start: int  # the first offset still in the log
    end: int  # the offset the next message will get
    committed: int | None  # the next offset the group will read; None: it never committed here

    @property
    def lag(self) -> int:
        """Messages the group has still to read: from its committed offset, else from the start of the log (where a
        consumer without a committed offset begins, and where one resumes whose offset fell out of retention)."""
        position = self.start if self.committed is None else max(self.committed, self.start)
        return max(self.end - position, 0)


class ClusterReader:
    """`start()` once, ask, `close()`. Every call goes to the cluster: callers cache what they need to."""

    def __init__(self, bootstrap_servers: str, *, client_id: str = "tenderwatch-admin") -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, client_id=client_id, group_id=None)
        self._started = False

    async def start(self) -> None:
        await self._admin.start()
        try:
            await self._consumer.start()
        except BaseException:
            await self._admin.close()
            raise
        self._started = True

    async def close(self) -> None:
        if self._started:
            self._started = False
            try:
                await self._consumer.stop()
            finally:
                await self._admin.close()

    async def topic_names(self) -> list[str]:
        return sorted(await self._admin.list_topics())

    async def layouts(self, topics: Iterable[str]) -> dict[str, TopicLayout]:
        """The partitions and replication of each named topic that exists."""
        names = list(topics)
        if not names:
            return {}
        found: dict[str, TopicLayout] = {}
        for topic in await self._admin.describe_topics(names):
            if topic["error_code"] != 0 or not topic["partitions"]:
                continue  # not there (yet)
            partitions = sorted(topic["partitions"], key=lambda p: p["partition"])
            found[topic["topic"]] = TopicLayout(
                name=topic["topic"],
                partitions=tuple(p["partition"] for p in partitions),
                replication=max(len(p["replicas"]) for p in partitions),
            )
        return found

    async def configs(self, topics: Iterable[str]) -> dict[str, dict[str, str]]:
        """The settings the cluster reports for each topic (some brokers report only those set explicitly)."""
        resources = [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        if not resources:
            return {}
        found: dict[str, dict[str, str]] = {}
        for response in await self._admin.describe_configs(resources):
            for error_code, _message, _type, name, entries in response.resources:
                if error_code == 0:
                    # Entries differ by protocol version after the first two fields: name, value.
                    found[name] = {entry[0]: entry[1] for entry in entries if entry[1] is not None}
        return found

    async def groups(self) -> list[str]:
        return sorted(group for group, *_rest in await self._admin.list_consumer_groups())

    async def offsets(self, group: str, layouts: Sequence[TopicLayout]) -> list[PartitionOffsets]:
        """Where `group` stands on every partition of `layouts`."""
        partitions = partitions_of(layouts)
        if not partitions:
            return []
        committed = await self.committed(group, partitions)
        starts, ends = await self.log_bounds(partitions)
        return positions(partitions, starts=starts, ends=ends, committed=committed)

    async def committed(self, group: str, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The offsets `group` committed on `partitions`; a partition where it never committed is left out."""
        if not partitions:
            return {}
        found = await self._admin.list_consumer_group_offsets(group, partitions=list(partitions))
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    async def log_bounds(
        self, partitions: Sequence[TopicPartition]
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """The first and the next offset of each partition."""
        starts: dict[TopicPartition, int] = await self._consumer.beginning_offsets(list(partitions))
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(list(partitions))
        return starts, ends


def partitions_of(layouts: Iterable[TopicLayout]) -> list[TopicPartition]:
    return [TopicPartition(layout.name, p) for layout in layouts for p in layout.partitions]


def positions(
    partitions: Iterable[TopicPartition],
    *,
    starts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int],
) -> list[PartitionOffsets]:
    return [
        PartitionOffsets(
            topic=tp.topic, partition=tp.partition, start=starts[tp], end=ends[tp], committed=committed.get(tp)
        )
        for tp in partitions
    ]
