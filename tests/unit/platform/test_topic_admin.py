"""The `tenderwatch topics` table and what a dead-letter replay sends back, without a broker."""

from __future__ import annotations

from services.platform.dlq_replay import ReplaySummary, replay_of
from services.platform.topics import GroupPosition, TopicReport, platform_topics, table
from services.runtime.cluster import PartitionOffsets


def test_every_topic_and_its_dead_letter_topic_are_reported() -> None:
    names = platform_topics()
    assert names[:2] == ["documents.received", "documents.received.dlq"]
    assert "subscriptions.changes" in names and "alerts.delivered.dlq" in names
    assert len(names) == 14


def test_the_table_shows_each_group_with_its_lag_and_topics_no_group_reads() -> None:
    classifier = GroupPosition(
        "tenderwatch-classifier",
        (
            PartitionOffsets("notices.received", 0, start=0, end=50, committed=50),
            PartitionOffsets("notices.received", 1, start=0, end=40, committed=31),
            PartitionOffsets("notices.received", 2, start=0, end=30, committed=None),
        ),
    )
    reports = [
        TopicReport("notices.received", True, 3, 1, "delete", end=120, groups=(classifier,)),
        TopicReport("subscriptions.changes", True, 3, 3, "compact", end=7),
        TopicReport("alerts.matched.dlq", False),
    ]
    lines = table(reports)
    assert [line.split() for line in lines] == [
        ["TOPIC", "PARTITIONS", "REPLICATION", "CLEANUP", "GROUP", "COMMITTED", "END", "LAG"],
        ["notices.received", "3", "1", "delete", "tenderwatch-classifier", "81", "120", "39"],
        ["subscriptions.changes", "3", "3", "compact", "-", "-", "7", "-"],
        ["alerts.matched.dlq", "missing"],
    ]
    assert len({line.index("CLEANUP") if "CLEANUP" in line else line.index("delete") for line in lines[:2]}) == 1

    detailed = [line.split() for line in table(reports[:1], by_partition=True)]
    assert detailed[2:] == [["p0", "50", "50", "0"], ["p1", "31", "40", "9"], ["p2", "-", "30", "30"]]


def test_a_dead_letter_goes_back_with_its_own_headers_only() -> None:
    headers = [
        ("content-type", b"application/json"),
        ("tw-correlation-id", b"c-1"),
        ("tw-error", b"boom"),
        ("tw-error-type", b"ValidationError"),
        ("tw-error-reason", b"bad-input"),
        ("tw-source-topic", b"notices.received"),
        ("tw-source-partition", b"2"),
        ("tw-source-offset", b"17"),
        ("tw-service", b"classifier"),
        ("tw-failed-at", b"2026-01-01T00:00:00+00:00"),
        ("tw-attempts", b"1"),
    ]
    assert replay_of("notices.received.dlq", headers) == (
        "notices.received",
        [("content-type", b"application/json"), ("tw-correlation-id", b"c-1")],
    )
    # A dead letter without its source (written by hand) goes to the topic the dead-letter topic is named after.
    assert replay_of("alerts.matched.dlq", [("x", b"1")]) == ("alerts.matched", [("x", b"1")])


def test_the_replay_summary_says_where_messages_went_and_why_they_had_failed() -> None:
    summary = ReplaySummary("notices.received.dlq", dry_run=False, pending=3)
    assert summary.lines() == ["nothing to replay in notices.received.dlq: no dead letter since the last replay"]
    summary.destinations.update({"notices.received": 3})
    summary.reasons.update({"processing-failed": 2, "bad-input": 1})
    assert summary.lines() == [
        "replayed 3 dead letter(s) from notices.received.dlq: notices.received 3",
        "by reason: processing-failed 2, bad-input 1",
    ]
    dry = ReplaySummary(
        "notices.received.dlq", dry_run=True, destinations=summary.destinations, reasons=summary.reasons
    )
    assert dry.lines()[0].startswith("would replay 3 dead letter(s)")
    assert dry.lines()[-1] == "dry run: nothing was published and nothing committed"
