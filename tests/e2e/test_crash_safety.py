"""Killing instances with SIGKILL at random moments loses no alert, and a resent one carries the id of the first.

The setup of test_scaling.py (3 classifier, 3 matcher and 2 notifier instances, one ingest; see alert_workload.py):
2,000 notices are published in ten bursts while every consumer service (ingest, classifier, matcher, notifier) has
an instance killed three times at random moments and restarted at once. The api, which only keeps the read model,
is left alone. At the end every expected alert has reached the SMTP server and the webhook receiver; a copy
received twice (an instance died between sending and recording it) carries the same Message-ID or webhook-id as the
first, so a receiver drops it. The counts are printed.

2,000 notices: the kills and restarts cost two shared cores about as much as the notices themselves, and the run
stays within about three minutes. The notifier's claims expire after 12 s (DELIVERY_CLAIM_LEASE, 2 minutes by
default): that is how long the deliveries a killed notifier was sending wait before another instance sends them.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Iterator

import pytest

from tests.e2e.alert_workload import (
    SCALED,
    Fleet,
    dead_letters,
    fleet,
    publish,
    subscribed_workload,
    tally,
    wait_for_alerts,
)

pytestmark = pytest.mark.e2e

NOTICES = 2_000
BURSTS = 10
BURST_PAUSE_SECONDS = 3.0
KILLED = ("ingest", "classifier", "matcher", "notifier")
KILLS_PER_SERVICE = 3
# From the first burst: the bursts take about 30 s to publish and the pipeline about two minutes to work through them.
# Each service's kills are spread over the window, one at a random moment in each third of it.
KILL_WINDOW_SECONDS = (3.0, 90.0)
_ALERTS_TIMEOUT = 240.0


@pytest.fixture(scope="module")
def crashing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    environment = {
        "DELIVERY_CLAIM_LEASE": "12s",
        "WEBHOOK_TIMEOUT": "5",
        "SMTP_TIMEOUT": "5",
        # A delivery whose attempt died with its instance is retried after these, not after minutes.
        "WEBHOOK_RETRY_SCHEDULE": "0s,2s,5s,10s,30s,1m",
        "SMTP_RETRY_SCHEDULE": "0s,2s,5s,10s,30s,1m",
    }
    with fleet(tmp_path_factory.mktemp("crash"), SCALED, environment) as started:
        yield started


def test_killed_instances_lose_no_alert_and_resends_keep_their_ids(crashing: Fleet) -> None:
    platform = crashing.platform
    workload, expected, receivers = subscribed_workload(crashing, NOTICES)
    seed = int(os.environ.get("CRASH_SAFETY_SEED") or random.randrange(2**32))  # printed: a failing run replays
    rng = random.Random(seed)
    begin, end = KILL_WINDOW_SECONDS
    slot = (end - begin) / KILLS_PER_SERVICE
    plan = sorted(
        (begin + slot * (number + rng.random()), service) for service in KILLED for number in range(KILLS_PER_SERVICE)
    )

    publishing_failed: list[BaseException] = []

    def publish_bursts() -> None:
        try:
            for number in range(BURSTS):
                asyncio.run(publish(crashing.bootstrap, workload.batch(number, BURSTS)))
                time.sleep(BURST_PAUSE_SECONDS)
        except BaseException as exc:  # reported by the test, not lost in the thread
            publishing_failed.append(exc)

    publisher = threading.Thread(target=publish_bursts, name="bursts")
    started = time.monotonic()
    publisher.start()
    kills = []
    for at, service in plan:
        time.sleep(max(0.0, started + at - time.monotonic()))
        victim = rng.choice(platform.instance_names(service))
        platform.kill_instance(victim)
        kills.append(f"{time.monotonic() - started:5.1f} s {victim}")
    publisher.join(timeout=120)
    assert not publisher.is_alive() and not publishing_failed, publishing_failed
    platform.wait_ready(timeout=120)

    wait_for_alerts(
        receivers,
        expected,
        timeout=_ALERTS_TIMEOUT,
        progress=lambda: f"seed {seed}, kills: {'; '.join(kills)}",
        while_waiting=platform.supervise_once,
    )
    received = receivers.read()
    counted = tally(expected, received)
    # A copy with an id no expected alert has would be a duplicate a receiver could not recognise.
    assert not counted.unexpected_emails and not counted.unexpected_webhooks, counted.describe()
    assert not received.bad_signatures, received.bad_signatures[:3]
    assert all(received.webhook_notices[alert.webhook_id] == {alert.notice_id} for alert in expected)
    assert asyncio.run(dead_letters(crashing.bootstrap, workload)) == []

    print(
        f"\nseed {seed}: {NOTICES} notices, {len(expected)} expected alerts (x2 channels), {len(kills)} kills "
        f"({'; '.join(kills)}); all {len(expected)} emails and {len(expected)} webhooks arrived; duplicates seen: "
        f"{received.email_copies} emails, {received.webhook_copies} webhooks, each with the id of its first copy"
    )
