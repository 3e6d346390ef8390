"""Several instances per service share the work, partitions move when one joins or leaves, nothing is lost or doubled.

3 classifier, 3 matcher and 2 notifier instances (6 partitions per topic) take 2,000 notices published in four
bursts (see alert_workload.py for the notices and the alerts they must give). While the first burst is being
worked on, one more instance of each joins; while the second is, one of the first instances of each leaves
gracefully (SIGTERM). That the work moved is shown three ways: the consumer groups' members, the partitions each
instance logged it was assigned, and the notices each instance logged it handled, with their partitions (from the
producer's partitioner).

2,000 notices give about 1,500 alerts by each channel: every partition carries work in every phase, and the run
stays within about three minutes on two shared cores, where the whole pipeline, alerts included, does 20 to 40
notices a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from schemas import Topic
from tests.e2e.alert_workload import (
    PARTITIONS,
    SCALED,
    Fleet,
    assignments,
    by_instance,
    count_lines,
    dead_letters,
    fleet,
    partitions_of,
    publish,
    subscribed_workload,
    tally,
    until,
    wait_for_alerts,
    wait_for_group,
    wait_for_work,
    work_done,
)

pytestmark = pytest.mark.e2e

NOTICES = 2_000
BURSTS = 4
_ALERTS_TIMEOUT = 240.0
# What each service logs for each piece of work: a notice classified or matched, a delivery attempted (notifier
# instances share deliveries through the database, whichever of them consumed the alert).
_WORK = {"classifier": "classified notice", "matcher": "matched notice", "notifier": "delivery attempt"}


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with fleet(tmp_path_factory.mktemp("scaling"), SCALED) as started:
        yield started


def test_instances_share_the_work_and_every_alert_arrives_exactly_once(scaled: Fleet) -> None:
    platform = scaled.platform
    workload, expected, receivers = subscribed_workload(scaled, NOTICES)

    def alerts_received() -> int:
        received = receivers.read()
        return len(received.emails) + len(received.webhooks)

    # Burst 1 on the first instances; one more of each joins while it is being worked on.
    asyncio.run(publish(scaled.bootstrap, workload.batch(0, BURSTS)))
    until(lambda: alerts_received() >= len(expected) // BURSTS // 2, what="the first alerts of the first burst")
    joined_at = datetime.now(UTC)
    newcomers = dict(zip(SCALED, platform.add_instances(*SCALED), strict=True))
    for service, count in SCALED.items():
        wait_for_group(scaled, service, count + 1)

    # Burst 2 on one more of each; once the newcomers work, one of the first instances of each leaves.
    asyncio.run(publish(scaled.bootstrap, workload.batch(1, BURSTS)))
    for service, newcomer in newcomers.items():
        wait_for_work(scaled, newcomer, _WORK[service])
    leavers = {service: f"{service}-2" for service in SCALED}
    stopped = platform.remove_instances(*leavers.values())
    assert all(stopped.values()), f"killed after 30 s instead of stopping by themselves: {stopped}"
    left_at = datetime.now(UTC)
    for service, count in SCALED.items():
        wait_for_group(scaled, service, count)

    # Bursts 3 and 4 on the instances that are left.
    asyncio.run(publish(scaled.bootstrap, workload.batch(2, BURSTS)))
    time.sleep(2)
    asyncio.run(publish(scaled.bootstrap, workload.batch(3, BURSTS)))
    wait_for_alerts(receivers, expected, timeout=_ALERTS_TIMEOUT, progress=lambda: f"{alerts_received()} received")

    # Every expected alert exactly once by each channel, nothing else, each webhook signed and about its notice.
    received = receivers.read()
    counted = tally(expected, received)
    assert not counted.unexpected_emails and not counted.unexpected_webhooks, counted.describe()
    assert not received.bad_signatures, received.bad_signatures[:3]
    twice = {key: n for key, n in (received.emails + received.webhooks).items() if n > 1}
    assert not twice, f"{len(twice)} alerts delivered more than once, e.g. {list(twice.items())[:3]}"
    assert all(received.webhook_notices[alert.webhook_id] == {alert.notice_id} for alert in expected)
    assert asyncio.run(dead_letters(scaled.bootstrap, workload)) == []

    report = [f"{NOTICES} notices, {len(expected)} alerts, each received once by email and once by webhook"]
    for service, topic in (("classifier", Topic.NOTICES_RECEIVED), ("matcher", Topic.NOTICES_CLASSIFIED)):
        lines = work_done(platform, service, _WORK[service], workload)
        phases = {
            f"{SCALED[service]} instances": by_instance(line for line in lines if line.at < joined_at),
            "one joined": by_instance(line for line in lines if joined_at <= line.at < left_at),
            "one left": by_instance(line for line in lines if line.at >= left_at),
        }
        for phase, handled in phases.items():
            done = ", ".join(f"{name} {len(ids)} on {partitions_of(ids)}" for name, ids in sorted(handled.items()))
            report.append(f"{service}s, {phase}: {done}")
        first, during, after = phases.values()
        every = set().union(*first.values(), *during.values(), *after.values())
        assert every == {n.notice_id for n in workload.notices}, f"{service}s skipped notices"
        assert set(first) == {service, f"{service}-2", f"{service}-3"}, f"not every {service} worked: {report}"
        assert during.get(newcomers[service]), f"{newcomers[service]} did no work: {report}"
        assert leavers[service] not in after

        # The partitions as the group assigned them: the newcomer got some; after the leave, the instances
        # that remain hold them all between them.
        assigned = assignments(platform, service, topic)
        assert any(a.instance == newcomers[service] and a.partitions for a in assigned), assigned
        latest = {a.instance: a.partitions for a in assigned}
        remaining = {name: sorted(latest.get(name, ())) for name in platform.instance_names(service)}
        assert {p for held in remaining.values() for p in held} == set(range(PARTITIONS)), remaining
        report.append(f"{service}s' last assignments: {remaining}")

    notifiers = ("notifier", leavers["notifier"], newcomers["notifier"])
    queued = {name: count_lines(platform.log_path(name), "queued deliveries") for name in notifiers}
    sent = {name: count_lines(platform.log_path(name), _WORK["notifier"]) for name in notifiers}
    report.append(f"notifiers: alerts queued {queued}, delivery attempts {sent}")
    assert all(sent.values()), report[-1]
    print("\n".join(report))
