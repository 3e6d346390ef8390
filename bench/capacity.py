"""Capacity of the whole platform on the embedded stack: notices per second end to end, publish -> webhook latency,
and where the CPU goes.

Setup: the embedded stack (Tansu broker, PostgreSQL), one instance of each service as `tenderwatch run` starts them
(`services/platform/supervisor.py`), and the local webhook receiver, all on this machine.

- **100,000 subscriptions**: the matcher benchmark's workload (`bench/_matcher_workload.py`, whose docstring gives
  every distribution), published straight onto `subscriptions.changes` as `SubscriptionChange` events keyed by
  subscription id, as the api's outbox publishes them: through the API they would take minutes, and only the
  matcher reads them. The api does not know them. Each also asks for at least a year before the deadline
  (`min_days_left` 366), which no notice here has: the index does all of its set work for every notice, and its
  last step (the deadline bound) drops them. Fan-out is left out on purpose: at this workload's match rate a notice
  concerns about 100 subscribers, whose alerts are a notifier capacity question (`bench/notifier_*.py`).
- **Probe subscribers**: 4 accounts made through the API, each with a webhook endpoint on the receiver and a
  subscription on a marker word; one notice in five carries one of the words, so it gives exactly one webhook.
- **Notices**: copies of the real French notices of `tests/fixtures` with fresh ids, published now with a deadline
  a month ahead (`tests/e2e/alert_workload.py`), sent as canonical JSON onto `documents.received`, the topic
  `tenderwatch import` and the pollers feed.

Phases, each with fresh notices:

1. **Maximum rate**: 2,000 notices sent as fast as the producer goes. Sustained notices/s = notices / (time from
   the first send to the moment every notice has gone through every consumer and every probe webhook arrived).
   Also the time at which each stage finished, and the publish -> webhook latency of the probes.
2. **200 notices/s** for 10 s (2,000 notices): publish -> webhook p50 and p99. Publish time is the broker's
   acknowledgement of the send, arrival the receiver's. When the pipeline cannot keep up with 200/s, the queue
   grows and so does the latency: the figure then says how far behind it fell.
3. **Half the maximum** measured in phase 1, for 20 s: the latency at a rate the pipeline sustains.

Baselines, measured in the same run: the same documents produced to and consumed from a topic of the same broker by
one client (raw Kafka throughput, and the latency of one hop at 200/s); and, per service, the pure work of one notice
in this process (parsing, classifying, matching against the same 100,000 subscriptions), against the CPU the
service process spent per notice (psutil, during phase 1). The CPU share of each process is of the machine's cores.

Results go to `bench/results/pipeline.json`. Alone: `python -m bench.capacity` (about five minutes; progress on
stderr). The machine is shared: figures are pessimistic.
"""

from __future__ import annotations

import asyncio
import json
import platform as host
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from bench._matcher_workload import Workload as SubscriptionWorkload
from bench._table import Row, percentile, print_table
from schemas import DOCUMENT_HEADERS, Notice, SubscriptionChange, Topic
from services.classifier.classify import Classifier
from services.ingest.sources import parse_document
from services.matcher.index import SubscriptionIndex
from services.platform.sinks import WebhookReceiver
from services.platform.supervisor import SERVICES, Platform
from tests.e2e.alert_workload import MARKERS, Workload, document

RESULTS = Path(__file__).parent / "results" / "pipeline.json"
SUBSCRIPTIONS = 100_000
DAYS_LEFT_ASKED = 366  # the background subscriptions' min_days_left (its maximum): notices here have a month left
PROBES = 4
PROBE_EVERY = 5  # one notice in five carries a probe subscriber's marker
MAX_RATE_NOTICES = 2_000
FIXED_RATE = 200.0
FIXED_SECONDS = 10.0
MODERATE_SECONDS = 20.0
_PHASE_TIMEOUT = 600.0
_STALL_SECONDS = 60.0
_BASELINE_TOPIC = "bench.capacity.baseline"
_STAGES = {  # service -> the topic whose messages it processes for each notice
    "ingest": Topic.DOCUMENTS_RECEIVED,
    "classifier": Topic.NOTICES_RECEIVED,
    "matcher": Topic.NOTICES_CLASSIFIED,
    "api": Topic.NOTICES_CLASSIFIED,
}
_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f"  [{time.monotonic() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def _probe_markers(number: int) -> tuple[str, ...]:
    return (MARKERS[number // PROBE_EVERY % PROBES],) if number % PROBE_EVERY == 0 else ()


# --- the platform ---------------------------------------------------------------------------------------------------


@dataclass
class _Probe:
    account_id: str
    endpoint_id: str
    path: str


def _probes(api: str, receiver: WebhookReceiver) -> list[_Probe]:
    probes = []
    with httpx.Client(base_url=api, timeout=30.0) as client:
        for number in range(PROBES):
            about = {"name": f"probe-{number}", "email": f"probe{number}@example.org"}
            account = client.post("/v1/accounts", json=about)
            account.raise_for_status()
            auth = {"authorization": f"Bearer {account.json()['api_key']}"}
            path = f"/probe/{number}"
            endpoint = client.post("/v1/webhook-endpoints", json={"url": f"{receiver.url}{path}"}, headers=auth)
            endpoint.raise_for_status()
            subscription = client.post(
                "/v1/subscriptions",
                json={
                    "name": f"probe {number}",
                    "filters": {"keywords": MARKERS[number]},
                    "delivery": {"webhook_endpoint_id": endpoint.json()["id"]},
                },
                headers=auth,
            )
            subscription.raise_for_status()
            probes.append(_Probe(account.json()["id"], endpoint.json()["id"], path))
    return probes


async def _publish_subscriptions(bootstrap: str, index: SubscriptionIndex) -> int:
    """The workload's subscriptions, never due, onto `subscriptions.changes`; also into `index` (the baseline)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    sent = []
    try:
        for number, subscription in enumerate(SubscriptionWorkload.load().subscriptions(SUBSCRIPTIONS)):
            never_due = subscription.filters.model_copy(update={"min_days_left": DAYS_LEFT_ASKED})
            subscription = subscription.model_copy(update={"filters": never_due})
            index.upsert(subscription)
            value = SubscriptionChange(subscription=subscription).model_dump_json().encode()
            key = subscription.subscription_id.encode()
            sent.append(await producer.send(Topic.SUBSCRIPTIONS_CHANGES.value, value, key=key))
            if (number + 1) % 20_000 == 0:
                _progress(f"{number + 1:,} subscriptions published")
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(sent)


def _matcher_holds(platform: Platform) -> int:
    stats = httpx.get(f"{platform.url('matcher')}/v1/index", timeout=10).json()
    return int(stats["subscriptions"]) if stats["ready"] else -1


# --- one phase ------------------------------------------------------------------------------------------------------


class _Processed:
    """A service's consumer of one topic as its `/metrics` shows it: messages processed, when the count last grew,
    and the mean time in the handler since `mark()`."""

    def __init__(self, base_url: str, service: str, topic: Topic) -> None:
        self._url, self._labels = f"{base_url}/metrics", {"service": service, "topic": topic.value}
        self.count, self.last_at = 0, 0.0
        self._handler = (0.0, 0)  # seconds and messages in the handler, as of the last read
        self._marked = (0.0, 0)

    def read(self) -> int:
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(httpx.get(self._url, timeout=10).text):
            for sample in family.samples:
                if sample.labels == self._labels:
                    values[sample.name] = sample.value
        count = int(values.get("tenderwatch_messages_processed_total", 0))
        if count > self.count:
            self.count, self.last_at = count, time.time()
        self._handler = (
            values.get("tenderwatch_processing_seconds_sum", 0.0),
            int(values.get("tenderwatch_processing_seconds_count", 0)),
        )
        return self.count

    def mark(self) -> None:
        self.read()
        self._marked = self._handler

    @property
    def handler_ms(self) -> float | None:
        """Mean handler time since `mark()`, in milliseconds; None when no message was handled."""
        seconds, messages = self._handler[0] - self._marked[0], self._handler[1] - self._marked[1]
        return seconds / messages * 1000 if messages else None


async def _send(bootstrap: str, notices: Sequence[Notice], rate: float | None) -> list[float]:
    """Send the notices onto `documents.received` (at `rate` per second, else at once); returns each one's ack time."""
    documents = [document(notice) for notice in notices]
    headers = [(DOCUMENT_HEADERS.CONTENT_TYPE, b"application/json"), (DOCUMENT_HEADERS.ORIGIN, b"file")]
    acked = [0.0] * len(documents)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures = []
        started = time.monotonic()
        for number, (key, body) in enumerate(documents):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            future = await producer.send(Topic.DOCUMENTS_RECEIVED.value, body, key=key, headers=headers)
            future.add_done_callback(lambda _done, n=number: acked.__setitem__(n, time.time()))
            futures.append(future)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return acked


class _Cpu:
    """CPU seconds of each process of the platform, by role."""

    def __init__(self, platform: Platform) -> None:
        self._services = {name: psutil.Process(platform.pid(name)) for name in SERVICES}
        self._bench = psutil.Process()

    def snapshot(self) -> dict[str, float]:
        seconds = {name: _cpu(process) for name, process in self._services.items()}
        seconds["broker (Tansu)"] = seconds["PostgreSQL"] = 0.0
        for process in self._bench.children(recursive=True):
            try:
                name = process.name()
                role = "broker (Tansu)" if name.startswith("tansu") else "PostgreSQL" if "postgres" in name else None
                if role:
                    seconds[role] += _cpu(process)
            except psutil.Error:
                continue  # a database backend that just ended
        seconds["bench (publisher, receiver)"] = _cpu(self._bench)
        return seconds


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass
class _Phase:
    name: str
    notices: int
    seconds: float  # first send to the last notice through every stage and the last probe webhook
    stage_seconds: dict[str, float]  # when each stage processed its last notice, from the first send
    handler_ms: dict[str, float]  # each service's mean time in its handler per message
    latencies_ms: list[float]
    cpu_seconds: dict[str, float]

    @property
    def rate(self) -> float:
        return self.notices / self.seconds

    def summary(self) -> dict[str, Any]:
        return {
            "notices": self.notices,
            "seconds": round(self.seconds, 2),
            "notices_per_second": round(self.rate, 1),
            "stage_done_after_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "handler_ms_per_message": {k: round(v, 2) for k, v in self.handler_ms.items()},
            "webhooks": len(self.latencies_ms),
            "latency_ms": {
                "p50": round(percentile(self.latencies_ms, 0.50), 1),
                "p99": round(percentile(self.latencies_ms, 0.99), 1),
                "max": round(max(self.latencies_ms, default=float("nan")), 1),
            },
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu_seconds.items()},
        }


def _run_phase(
    name: str,
    platform: Platform,
    receiver: WebhookReceiver,
    probes: list[_Probe],
    cpu: _Cpu,
    *,
    count: int,
    rate: float | None,
) -> tuple[_Phase, Workload]:
    workload = Workload.make(count, markers=_probe_markers)
    paths = {probe.path for probe in probes}
    wanted = sum(1 for words in workload.markers if words)
    counters = {service: _Processed(platform.url(service), service, topic) for service, topic in _STAGES.items()}
    before = {service: counter.read() for service, counter in counters.items()}
    alerts = _Processed(platform.url("notifier"), "notifier", Topic.ALERTS_MATCHED)  # only the probes' alerts
    for counter in (*counters.values(), alerts):
        counter.mark()
    seen = len(receiver.requests())
    cpu_before = cpu.snapshot()
    _progress(f"{name}: sending {count:,} notices" + (f" at {rate:,.0f}/s" if rate else " as fast as possible"))
    sending = time.time()
    acked = asyncio.run(_send(platform.env["KAFKA_BOOTSTRAP_SERVERS"], workload.notices, rate))
    _progress(f"{name}: sent in {time.time() - sending:.1f} s")
    deadline, last_report = time.monotonic() + _PHASE_TIMEOUT, 0.0
    while True:
        done = {service: counter.read() - before[service] for service, counter in counters.items()}
        hooks = [r for r in receiver.requests()[seen:] if r.path in paths]
        if min(done.values()) >= count and len(hooks) >= wanted:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{name}: after {_PHASE_TIMEOUT:.0f} s, {done} processed, {len(hooks)}/{wanted} webhooks"
            )
        if time.monotonic() - last_report > 5:
            last_report = time.monotonic()
            stages = ", ".join(f"{service} {n:,}" for service, n in done.items())
            _progress(f"{name}: processed {stages}; webhooks {len(hooks):,}/{wanted:,}")
        time.sleep(0.2)
    cpu_after = cpu.snapshot()
    alerts.read()
    first = min(acked)
    index = {notice.notice_id: number for number, notice in enumerate(workload.notices)}
    latencies = [
        (request.at - acked[index[json.loads(request.body)["data"]["notice"]["notice_id"]]]) * 1000 for request in hooks
    ]
    stage_seconds = {service: counter.last_at - first for service, counter in counters.items()}
    stage_seconds["webhooks"] = max(request.at for request in hooks) - first
    phase = _Phase(
        name=name,
        notices=count,
        seconds=max(stage_seconds.values()),
        stage_seconds=stage_seconds,
        handler_ms={
            service: ms
            for service, counter in {**counters, "notifier": alerts}.items()
            if (ms := counter.handler_ms) is not None
        },
        latencies_ms=latencies,
        cpu_seconds={role: cpu_after[role] - cpu_before[role] for role in cpu_after},
    )
    _progress(
        f"{name}: {phase.rate:,.1f} notices/s end to end; webhook p50 {percentile(latencies, 0.5):,.0f} ms, "
        f"p99 {percentile(latencies, 0.99):,.0f} ms"
    )
    return phase, workload


# --- baselines ------------------------------------------------------------------------------------------------------


async def _kafka_baseline(bootstrap: str, notices: Sequence[Notice], partitions: int) -> tuple[float, list[float]]:
    """Raw Kafka: the documents produced and consumed back by one client (messages/s), then one hop's latency in
    milliseconds at FIXED_RATE, on a topic of the same broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(_BASELINE_TOPIC, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    documents = [document(notice) for notice in notices]
    consumer = AIOKafkaConsumer(
        _BASELINE_TOPIC, bootstrap_servers=bootstrap, group_id="bench-capacity", auto_offset_reset="latest"
    )
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=200)
    for partition in consumer.assignment():
        await consumer.seek_to_end(partition)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2, max_batch_size=256 * 1024)
    await producer.start()
    try:
        started = time.perf_counter()
        sent = [await producer.send(_BASELINE_TOPIC, body, key=key) for key, body in documents]
        received = 0
        while received < len(documents):
            received += sum(len(records) for records in (await consumer.getmany(timeout_ms=500)).values())
        throughput = len(documents) / (time.perf_counter() - started)
        await asyncio.gather(*sent)

        sent_at: dict[bytes, float] = {}
        latencies: list[float] = []
        hop_count = int(FIXED_RATE * 5)

        async def receive() -> None:
            while len(latencies) < hop_count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    now = time.time()
                    latencies.extend((now - sent_at[r.key]) * 1000 for r in records if r.key in sent_at)

        receiving = asyncio.create_task(receive())
        begun = time.monotonic()
        for number, (key, body) in enumerate(documents[:hop_count]):
            await asyncio.sleep(max(0.0, begun + number / FIXED_RATE - time.monotonic()))
            future = await producer.send(_BASELINE_TOPIC, body, key=key)
            future.add_done_callback(lambda _done, k=key: sent_at.__setitem__(k, time.time()))
        await asyncio.wait_for(receiving, 60)
    finally:
        await producer.stop()
        await consumer.stop()
    return throughput, latencies


def _per_notice_ms(work: Callable[[Any], object], items: Sequence[Any]) -> float:
    started = time.perf_counter()
    for item in items:
        work(item)
    return (time.perf_counter() - started) * 1000 / len(items)


def _domain_work_ms(notices: Sequence[Notice], index: SubscriptionIndex) -> dict[str, float]:
    """What one notice costs each service's own logic, in this process: the figure its CPU per notice compares to."""
    bodies = [document(notice)[1] for notice in notices]
    classifier = Classifier.load()
    now = datetime.now(UTC)
    classified = [classifier.classify(notice, now=now) for notice in notices]
    return {
        "ingest": _per_notice_ms(parse_document, bodies),
        "classifier": _per_notice_ms(lambda notice: classifier.classify(notice, now=now), notices),
        "matcher": _per_notice_ms(lambda notice: index.match(notice, now=now), classified),
    }


# --- the run --------------------------------------------------------------------------------------------------------


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="tenderwatch-capacity-") as workdir:
        receiver = WebhookReceiver(Path(workdir) / "webhooks")
        receiver.start()
        # Always the embedded stack, whatever the environment names.
        platform = Platform(
            Path(workdir),
            environment={
                "KAFKA_BOOTSTRAP_SERVERS": "",
                "DATABASE_URL": "",
                "WEBHOOK_ALLOW_PRIVATE": "true",
                "LOG_FORMAT": "json",
            },
        )
        try:
            _progress("starting the embedded stack and one instance of each service")
            platform.start(timeout=180)
            return _measure(platform, receiver)
        finally:
            platform.stop()
            receiver.stop()


def _measure(platform: Platform, receiver: WebhookReceiver) -> list[Row]:
    bootstrap = platform.env["KAFKA_BOOTSTRAP_SERVERS"]
    probes = _probes(platform.url("api"), receiver)
    _progress(f"{PROBES} probe subscribers made through the API; generating {SUBSCRIPTIONS:,} subscriptions")
    index = SubscriptionIndex()
    published = asyncio.run(_publish_subscriptions(bootstrap, index))
    progressed, last = time.monotonic(), -1
    while (held := _matcher_holds(platform)) < published + PROBES:
        if held > last:
            progressed, last = time.monotonic(), held
        elif time.monotonic() - progressed > _STALL_SECONDS:
            raise RuntimeError(
                f"the matcher has held {held:,} of {published + PROBES:,} subscriptions for {_STALL_SECONDS:.0f} s; "
                f"see {platform.log_path('matcher')}"
            )
        _progress(f"the matcher holds {max(held, 0):,} subscriptions")
        time.sleep(5)
    cpu = _Cpu(platform)

    peak, peak_workload = _run_phase("maximum rate", platform, receiver, probes, cpu, count=MAX_RATE_NOTICES, rate=None)
    fixed, _ = _run_phase(
        f"{FIXED_RATE:.0f}/s", platform, receiver, probes, cpu, count=int(FIXED_RATE * FIXED_SECONDS), rate=FIXED_RATE
    )
    moderate_rate = max(1.0, round(peak.rate / 2))
    moderate, _ = _run_phase(
        f"{moderate_rate:.0f}/s (half the maximum)",
        platform,
        receiver,
        probes,
        cpu,
        count=int(moderate_rate * MODERATE_SECONDS),
        rate=moderate_rate,
    )

    _progress("baselines: raw Kafka on the same broker, and each service's own work in this process")
    partitions = int(platform.env.get("KAFKA_TOPIC_PARTITIONS") or 3)
    kafka_rate, hop_ms = asyncio.run(_kafka_baseline(bootstrap, peak_workload.notices, partitions))
    domain_ms = _domain_work_ms(peak_workload.notices[:500], index)

    cores = psutil.cpu_count() or 1
    cpu_rows = [
        _ProcessCpu(
            process=role,
            cpu_seconds=round(seconds, 2),
            share_of_cores=round(seconds / (peak.seconds * cores), 3),
            cpu_ms_per_notice=round(seconds * 1000 / peak.notices, 2),
            own_work_ms_per_notice=round(domain_ms[role], 3) if role in domain_ms else None,
            handler_ms_per_message=round(peak.handler_ms[role], 2) if role in peak.handler_ms else None,
        )
        for role, seconds in sorted(peak.cpu_seconds.items(), key=lambda item: -item[1])
    ]
    _print_cpu(cpu_rows, peak, cores)

    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": host.python_version(),
        "cpus": cores,
        "machine": "shared, so the figures are pessimistic",
        "setup": {
            "stack": "embedded (Tansu broker, PostgreSQL 16), one instance of each service",
            "subscriptions": published + PROBES,
            "background_subscriptions": f"bench/_matcher_workload.py with min_days_left {DAYS_LEFT_ASKED}",
            "probe_subscribers": PROBES,
            "notices_with_a_webhook": f"1 in {PROBE_EVERY}",
            "partitions": partitions,
        },
        "targets": {"notices_per_second": 2000, "p99_ms_at_200_per_second": 1000},
        "phases": {phase.name: phase.summary() for phase in (peak, fixed, moderate)},
        "cpu_at_maximum_rate": [asdict(row) for row in cpu_rows],
        "baselines": {
            "kafka_produce_consume_messages_per_second": round(kafka_rate, 1),
            "kafka_one_hop_ms_at_200_per_second": {
                "p50": round(percentile(hop_ms, 0.5), 2),
                "p99": round(percentile(hop_ms, 0.99), 2),
            },
            "own_work_ms_per_notice": {k: round(v, 3) for k, v in domain_ms.items()},
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    hops = {"p50": percentile(hop_ms, 0.5), "p99": percentile(hop_ms, 0.99)}
    kafka = "raw Kafka produce+consume, same broker"
    rows = [
        Row(f"end to end, max rate, {published + PROBES:,} subscriptions", peak.rate, "notices/s", kafka, kafka_rate)
    ]
    for phase in (fixed, moderate, peak):
        for label, share in (("p50", 0.5), ("p99", 0.99)):
            latency = percentile(phase.latencies_ms, share)
            hop = f"one Kafka hop {label} at 200/s"
            rows.append(Row(f"publish -> webhook {label} at {phase.name}", latency, "ms", hop, hops[label], False))
    for row in cpu_rows:
        if row.own_work_ms_per_notice is not None:
            own = "its own work in-process"
            cost = row.cpu_ms_per_notice
            rows.append(Row(f"CPU per notice: {row.process}", cost, "ms", own, row.own_work_ms_per_notice, False))
    return rows


@dataclass(frozen=True)
class _ProcessCpu:
    process: str
    cpu_seconds: float
    share_of_cores: float
    cpu_ms_per_notice: float
    own_work_ms_per_notice: float | None
    # One message at a time per instance: the handler's time bounds what an instance carries.
    handler_ms_per_message: float | None


def _print_cpu(rows: list[_ProcessCpu], peak: _Phase, cores: int) -> None:
    print(
        f"\nCPU at the maximum rate ({peak.notices:,} notices in {peak.seconds:.1f} s on {cores} cores; stages done: "
        + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in peak.stage_seconds.items())
        + ")"
    )
    print(
        f"{'process':<30}{'CPU s':>8}{'of cores':>10}{'CPU ms/notice':>15}{'own work ms':>13}"
        f"{'handler ms/msg':>16}{'one instance carries':>22}"
    )
    for row in rows:
        own = "" if row.own_work_ms_per_notice is None else f"{row.own_work_ms_per_notice:.3f}"
        handler = "" if row.handler_ms_per_message is None else f"{row.handler_ms_per_message:.1f}"
        carries = "" if row.handler_ms_per_message is None else f"{1000 / row.handler_ms_per_message:,.0f} messages/s"
        print(
            f"{row.process:<30}{row.cpu_seconds:>8.1f}{row.share_of_cores:>10.0%}"
            f"{row.cpu_ms_per_notice:>15.2f}{own:>13}{handler:>16}{carries:>22}"
        )
    print(
        "CPU ms/notice: the process's CPU over the phase per notice published (the notifier's is for 1 webhook in "
        f"{PROBE_EVERY} notices); own work: the service's domain logic alone, in this process; handler ms/msg: "
        "wall time from taking a message to finishing it (waits on the database and the broker included)\n"
    )


if __name__ == "__main__":
    print_table(run())
