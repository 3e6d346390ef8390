"""What a notice's alerts cost the matcher to publish: one `alerts.matched` event per subscriber it concerns.

Workload: the matcher benchmark's (`bench/_matcher_workload.py`) at 100,000 subscriptions and its 84 real notices;
each notice is matched and its events built as the matcher does (`build_matches`), which the figures leave out:
they are the publishing alone. A notice concerns from none to about 1,700 subscribers here, and ten times as many
at a million subscriptions.

The events go through a broker built as the services build theirs (`Runtime`: the same settings and middlewares)
to a topic of their own, on the broker of KAFKA_BOOTSTRAP_SERVERS when set, else the embedded one. Two ways, in
alternating rounds so that both see the same machine:

- **the matcher's** (`publish_all`): every event queued, then every acknowledgement awaited at once;
- **baseline**, as the matcher published before: one event at a time, each acknowledged before the next.

Per notice: p50, p99 and max of the time to publish its events, and events per second over all notices.
Results go to `bench/results/fanout.json`; alone: `python -m bench.fanout` (about a minute).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench._matcher_workload import Workload, matched_at
from bench._stack import stack_environment
from bench._table import Row, distribution, print_table, run_facts
from schemas import Match
from services.matcher.index import SubscriptionIndex
from services.matcher.matches import build_matches
from services.runtime.broker import create_topics, publish_all
from services.runtime.service import Runtime
from services.runtime.settings import Settings

RESULTS = Path(__file__).parent / "results" / "fanout.json"
SUBSCRIPTIONS = 100_000
_ROUNDS = 2

_Publish = Callable[[list[Match]], Awaitable[None]]


def _progress(message: str) -> None:
    print(f"  [fanout] {message}", file=sys.stderr, flush=True)


def _notices_events(workload: Workload) -> list[list[Match]]:
    """Each notice's `alerts.matched` events, as the matcher builds them from the index's hits."""
    index = SubscriptionIndex()
    for subscription in workload.subscriptions(SUBSCRIPTIONS):
        index.upsert(subscription)
    events = []
    for notice in workload.notices:
        now = matched_at(notice)
        events.append(build_matches(notice, index.match(notice, now=now), now=now))
    return events


async def _time(publish: _Publish, notices: list[list[Match]]) -> list[float]:
    """Milliseconds to publish each notice's events, notices one after the other."""
    times = []
    for events in notices:
        started = time.perf_counter()
        await publish(events)
        times.append((time.perf_counter() - started) * 1_000)
    return times


async def _measure(settings: Settings, notices: list[list[Match]]) -> dict[str, Any]:
    topic = f"bench.fanout.{uuid.uuid4().hex[:8]}"
    await create_topics(settings, {topic: {}})
    runtime = Runtime(settings, service="fanout-bench")
    publisher = runtime.broker.publisher(topic, schema=Match)

    async def together(events: list[Match]) -> None:
        await publish_all(publisher.publish(e, key=e.subscriber_id.encode(), no_confirm=True) for e in events)

    async def one_by_one(events: list[Match]) -> None:
        for event in events:
            await publisher.publish(event, key=event.subscriber_id.encode())

    ways: dict[str, _Publish] = {"publish_all": together, "one_at_a_time": one_by_one}
    times: dict[str, list[float]] = {name: [] for name in ways}
    await runtime.broker.start()
    try:
        await _time(together, notices[:3])  # connections and metadata warmed up
        for round_number in range(1, _ROUNDS + 1):
            for name, publish in ways.items():
                times[name] += await _time(publish, notices)
                _progress(f"round {round_number}: {name} done")
    finally:
        await runtime.broker.stop()
    events = sum(len(each) for each in notices) * _ROUNDS
    return {
        name: {"ms_per_notice": distribution(samples), "events_per_second": events / (sum(samples) / 1_000)}
        for name, samples in times.items()
    }


def run() -> list[Row]:
    _progress(f"matching the notices against {SUBSCRIPTIONS:,} subscriptions")
    workload = Workload.load()
    notices = _notices_events(workload)
    counts = sorted(len(events) for events in notices)
    _progress(f"{sum(counts):,} events for {len(counts)} notices (at most {counts[-1]:,} for one); publishing")
    with stack_environment(kafka=True) as environment:
        settings = Settings(
            kafka_bootstrap_servers=environment["KAFKA_BOOTSTRAP_SERVERS"],
            kafka_enable_idempotence=environment["KAFKA_ENABLE_IDEMPOTENCE"] == "true",
        )
        measured = asyncio.run(_measure(settings, notices))
    RESULTS.parent.mkdir(exist_ok=True)
    report = {
        **run_facts(),
        "subscriptions": SUBSCRIPTIONS,
        "notices": len(counts),
        "events_per_notice": {"mean": sum(counts) / len(counts), "max": counts[-1]},
        "rounds": _ROUNDS,
        **measured,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    ours, baseline = measured["publish_all"], measured["one_at_a_time"]
    at = f"{SUBSCRIPTIONS:,} subs, up to {counts[-1]:,} events a notice"
    name = "one event at a time, each acknowledged"
    rows = [
        Row(f"alerts published per notice {share}, {at}", ours["ms_per_notice"][share], "ms", name,
            baseline["ms_per_notice"][share], False)
        for share in ("p50", "p99", "max")
    ]  # fmt: skip
    rows.append(Row("alerts published per second", ours["events_per_second"], "events/s", name,
                    baseline["events_per_second"]))  # fmt: skip
    return rows


def main() -> int:
    print_table(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
