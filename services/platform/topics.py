"""`tenderwatch topics`: the platform's topics, how they are laid out, and how far each consumer group has read.

A group counts as reading a topic once it has committed an offset on it. The matcher reads
`subscriptions.changes` with no group (every instance reads all of it), so no group shows there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from schemas import Topic
from services.runtime.cluster import ClusterReader, PartitionOffsets, partitions_of, positions


@dataclass(frozen=True)
class GroupPosition:
    group: str
    partitions: tuple[PartitionOffsets, ...]

    @property
    def committed(self) -> int:
        return sum(p.committed or 0 for p in self.partitions)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


@dataclass(frozen=True)
class TopicReport:
    topic: str
    exists: bool
    partitions: int = 0
    replication: int = 0
    cleanup_policy: str = ""
    end: int = 0  # offsets handed out so far, all partitions together
    groups: tuple[GroupPosition, ...] = ()


def platform_topics() -> list[str]:
    return [name for topic in Topic for name in (topic.value, topic.dlq)]


async def read_topics(bootstrap_servers: str, topics: Sequence[str] | None = None) -> list[TopicReport]:
    """The report of `topics` (default: every topic of the platform and its dead-letter topic)."""
    names = list(topics) if topics is not None else platform_topics()
    reader = ClusterReader(bootstrap_servers)
    await reader.start()
    try:
        layouts = await reader.layouts(names)
        configs = await reader.configs(layouts.keys())
        partitions = partitions_of(layouts.values())
        starts, ends = await reader.log_bounds(partitions) if partitions else ({}, {})
        groups = await reader.groups()
        committed = await asyncio.gather(*(reader.committed(group, partitions) for group in groups))
    finally:
        await reader.close()

    reports: list[TopicReport] = []
    for name in names:
        layout = layouts.get(name)
        if layout is None:
            reports.append(TopicReport(topic=name, exists=False))
            continue
        own = partitions_of([layout])
        readers = tuple(
            GroupPosition(group, tuple(positions(own, starts=starts, ends=ends, committed=offsets)))
            for group, offsets in zip(groups, committed, strict=True)
            if any(tp in offsets for tp in own)
        )
        reports.append(
            TopicReport(
                topic=name,
                exists=True,
                partitions=len(layout.partitions),
                replication=layout.replication,
                # Some brokers report only the settings given explicitly: absent means Kafka's default.
                cleanup_policy=configs.get(name, {}).get("cleanup.policy", "delete"),
                end=sum(ends[tp] for tp in own),
                groups=readers,
            )
        )
    return reports


_HEADER = ("TOPIC", "PARTITIONS", "REPLICATION", "CLEANUP", "GROUP", "COMMITTED", "END", "LAG")
_RIGHT = {1, 2, 5, 6, 7}  # numbers, right-aligned


def table(reports: Sequence[TopicReport], *, by_partition: bool = False) -> list[str]:
    """One line per topic and group reading it (a topic no group reads: one line, `-` for the group)."""
    rows: list[tuple[str, ...]] = [_HEADER]
    for report in reports:
        if not report.exists:
            rows.append((report.topic, "missing", "", "", "", "", "", ""))
            continue
        layout = (report.topic, str(report.partitions), str(report.replication), report.cleanup_policy)
        if not report.groups:
            rows.append((*layout, "-", "-", str(report.end), "-"))
        for group in report.groups:
            rows.append((*layout, group.group, str(group.committed), str(report.end), str(group.lag)))
            if by_partition:
                for p in group.partitions:
                    committed = "-" if p.committed is None else str(p.committed)
                    rows.append(("", f"p{p.partition}", "", "", "", committed, str(p.end), str(p.lag)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    return [
        "  ".join(
            cell.rjust(widths[i]) if i in _RIGHT else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
