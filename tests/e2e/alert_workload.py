"""The workload of the scaling and crash-safety tests: thousands of distinct notices made from real ones,
subscribers whose alerts are known before anything is published, and what the SMTP server and the webhook
receiver got.

**Notices.** The real French calls for tender and award notices of `tests/fixtures` (eForms from TED, BOAMP), each
copied many times as a canonical JSON notice of the source `scaletest`: its own id, a fresh procedure id (so that
no copy counts as a duplicate of another's procedure), published now with a deadline a month ahead, and a title
that ends with the marker words of the subscribers it is meant for. Three notices in ten have no marker (they must
alert nobody) and every seventh one has two.

**Subscribers.** One account per marker, each with an email address, a webhook endpoint and a subscription on its
marker word (the first also has a second subscription on the same word: one email per notice all the same; the
last one asks for calls for tender only). So the alerts due are known from the notices alone: subscriber k gets
notice i when i carries marker k (and, for the last one, when i is a call for tender). Each alert has a known
`Message-ID` and `webhook-id`, both derived from its match id, which is derived from the subscriber, the notice and
its version.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from aiokafka.partitioner import DefaultPartitioner

from schemas import DOCUMENT_HEADERS, Notice, NoticeKind, Topic, match_id_for
from services.ingest.sources import DocumentError, parse_document
from services.notifier.email.message import message_id_for
from services.notifier.webhooks.payload import webhook_message_id
from services.notifier.webhooks.signing import SignatureError, verify
from services.platform.sinks import MailSink, WebhookReceiver
from services.platform.supervisor import Platform

FIXTURES = Path(__file__).parents[1] / "fixtures"
SOURCE = "scaletest"
VERSION = "1"
MESSAGE_ID_DOMAIN = "tenderwatch.localhost"
# Invented words no real notice contains, that the keyword normaliser keeps as they are: one per subscriber, so
# that alerts, keyed by subscriber, spread over the partitions of `alerts.matched`.
MARKERS = (
    "varkelin", "dromquist", "pellowin", "zunderak", "moklavet", "ferquila",
    "brastimor", "quelvane", "tordiquen", "splavonte", "gremulak", "wintrasol",
)  # fmt: skip
PARTITIONS = 6  # room for a fourth instance of a service that starts with three
SCALED = {"classifier": 3, "matcher": 3, "notifier": 2}  # instances at start
STEP_TIMEOUT = 90.0  # bound on each wait for a step of the platform, generous for two shared cores


@dataclass
class Fleet:
    """The platform with several instances per service, on its own stack, with a real SMTP server and receiver."""

    platform: Platform
    mail: MailSink
    hooks: WebhookReceiver

    @property
    def bootstrap(self) -> str:
        return self.platform.env["KAFKA_BOOTSTRAP_SERVERS"]


@contextlib.contextmanager
def fleet(workdir: Path, instances: dict[str, int], environment: dict[str, str] | None = None) -> Iterator[Fleet]:
    """Start the platform with `instances` on its own embedded stack, not the tests' shared one: that one may hold
    topics made with fewer partitions, which the embedded broker cannot add to. A broker and a database named by
    KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are used instead, their topics given enough partitions first."""
    mail = MailSink(workdir / "mail")
    hooks = WebhookReceiver(workdir / "webhooks")
    mail.start()
    hooks.start()
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        asyncio.run(grow_topics(os.environ["KAFKA_BOOTSTRAP_SERVERS"]))
    platform = Platform(
        workdir,
        environment={
            "SMTP_HOST": mail.host,
            "SMTP_PORT": str(mail.port),
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "LOG_FORMAT": "json",
            "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
            "MESSAGE_ID_DOMAIN": MESSAGE_ID_DOMAIN,
            **(environment or {}),
        },
        instances=instances,
    )
    try:
        platform.start(timeout=300)
        yield Fleet(platform, mail, hooks)
    finally:
        platform.stop()
        hooks.stop()
        mail.stop()


def until(probe: Callable[[], bool], *, what: str, timeout: float = STEP_TIMEOUT) -> None:
    """Poll `probe` until it holds; bounded, and the failure says what was awaited."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.3)


def matchers_hold(fleet: Fleet, subscriptions: int) -> bool:
    """Whether every matcher instance has caught up and holds at least `subscriptions`."""
    for name in fleet.platform.instance_names("matcher"):
        stats = httpx.get(f"{fleet.platform.url(name)}/v1/index", timeout=5).json()
        if not stats["ready"] or int(stats["subscriptions"]) < subscriptions:
            return False
    return True


def group_size(fleet: Fleet, service: str) -> int:
    """How many members the consumer group of `service` has, as its coordinator says."""
    return asyncio.run(group_members(fleet.bootstrap, f"tenderwatch-{service}"))


def wait_for_group(fleet: Fleet, service: str, members: int) -> None:
    until(lambda: group_size(fleet, service) == members, what=f"{members} members in the {service}s' group")


def wait_for_work(fleet: Fleet, instance: str, message: str) -> None:
    """Until `instance` logged `message` (it did a piece of work)."""
    until(lambda: count_lines(fleet.platform.log_path(instance), message) > 0, what=f"{instance} to log {message!r}")


def real_notices() -> list[Notice]:
    """The real French calls for tender and award notices of the fixtures (eForms, BOAMP), each notice once."""
    found: dict[str, Notice] = {}
    for folder in ("eforms/ted", "boamp"):
        for path in sorted((FIXTURES / folder).rglob("*")):
            if path.suffix not in (".xml", ".json") or not path.is_file():
                continue
            try:
                parsed = parse_document(path.read_bytes(), filename=path.name)
            except DocumentError:
                continue
            for notice in parsed:
                if notice.language == "fr" and notice.kind is not NoticeKind.PLANNING and not notice.is_change:
                    found.setdefault(notice.notice_id, notice)
    return list(found.values())


def markers_of(number: int) -> tuple[str, ...]:
    if number % 10 >= 7:
        return ()
    first = MARKERS[number % len(MARKERS)]
    if number % 7 == 3:
        return (first, MARKERS[(number + 1) % len(MARKERS)])
    return (first,)


@dataclass(frozen=True)
class Subscriber:
    account_id: str
    email: str
    endpoint_id: str
    secret: str
    hook_path: str
    marker: str
    competition_only: bool

    def wants(self, notice: Notice, markers: tuple[str, ...]) -> bool:
        return self.marker in markers and (not self.competition_only or notice.kind is NoticeKind.COMPETITION)


@dataclass(frozen=True)
class ExpectedAlert:
    notice_id: str
    subscriber: Subscriber
    match_id: str
    message_id: str
    webhook_id: str


@dataclass
class Workload:
    """The notices of one test run, in publication order, with the alerts they must give."""

    run: str
    notices: list[Notice]
    markers: list[tuple[str, ...]]
    subscribers: list[Subscriber] = field(default_factory=list)

    @classmethod
    def make(
        cls, count: int, *, now: datetime | None = None, markers: Callable[[int], tuple[str, ...]] = markers_of
    ) -> Workload:
        """`count` notices; `markers` gives the marker words of the notice of each number."""
        bases = real_notices()
        moment = now or datetime.now(UTC)
        run = uuid.uuid4().hex[:8]
        notices, marked = [], []
        for number in range(count):
            base = bases[number % len(bases)]
            words = markers(number)
            source_id = f"{run}-{number:05d}"
            notices.append(
                base.model_copy(
                    update={
                        "notice_id": f"{SOURCE}:{source_id}",
                        "source": SOURCE,
                        "source_id": source_id,
                        "version": VERSION,
                        "procedure_id": str(uuid.uuid4()),
                        "title": " ".join((base.title, *words)),
                        "published_at": moment,
                        "deadline": moment + timedelta(days=30),
                    }
                )
            )
            marked.append(words)
        return cls(run, notices, marked)

    def expected(self) -> list[ExpectedAlert]:
        alerts = []
        for notice, words in zip(self.notices, self.markers, strict=True):
            for subscriber in self.subscribers:
                if subscriber.wants(notice, words):
                    match_id = match_id_for(subscriber.account_id, notice.notice_id, notice.version)
                    alerts.append(
                        ExpectedAlert(
                            notice_id=notice.notice_id,
                            subscriber=subscriber,
                            match_id=match_id,
                            message_id=message_id_for(match_id, subscriber.email, MESSAGE_ID_DOMAIN),
                            webhook_id=webhook_message_id(match_id, subscriber.endpoint_id),
                        )
                    )
        return alerts

    def is_ours(self, notice_id: object) -> bool:
        return isinstance(notice_id, str) and notice_id.startswith(f"{SOURCE}:{self.run}-")

    def batch(self, number: int, of: int) -> list[Notice]:
        """The `number`th of `of` consecutive slices of the notices."""
        size = -(-len(self.notices) // of)
        return self.notices[number * size : (number + 1) * size]


def subscribe(api: str, hooks: WebhookReceiver, workload: Workload) -> list[Subscriber]:
    """One account per marker, through the API: webhook endpoint, email address, subscription."""
    subscribers = []
    with httpx.Client(base_url=api, timeout=30.0) as client:
        for number, marker in enumerate(MARKERS):
            name = f"scale-{workload.run}-{number}"
            email = f"{name}@example.org"
            account = _created(client.post("/v1/accounts", json={"name": name, "email": email}))
            auth = {"authorization": f"Bearer {account['api_key']}"}
            hook_path = f"/hooks/{name}"
            endpoint = _created(
                client.post("/v1/webhook-endpoints", json={"url": f"{hooks.url}{hook_path}"}, headers=auth)
            )
            competition_only = number == len(MARKERS) - 1
            filters: dict[str, Any] = {"keywords": marker}
            if competition_only:
                filters["kinds"] = ["competition"]
            delivery = {"email": email, "webhook_endpoint_id": endpoint["id"]}
            copies = 2 if number == 0 else 1  # two subscriptions matching the same notices: still one alert
            for copy in range(copies):
                _created(
                    client.post(
                        "/v1/subscriptions",
                        json={"name": f"{marker} {copy}", "filters": filters, "delivery": delivery},
                        headers=auth,
                    )
                )
            subscribers.append(
                Subscriber(
                    account["id"], email, endpoint["id"], endpoint["secret"], hook_path, marker, competition_only
                )
            )
    workload.subscribers = subscribers
    return subscribers


def subscriptions_created(workload: Workload) -> int:
    return len(workload.subscribers) + 1  # the first subscriber has two


def subscribed_workload(fleet: Fleet, notices: int) -> tuple[Workload, list[ExpectedAlert], Receivers]:
    """A workload of `notices` notices, its subscribers created through the fleet's API, the alerts it must give
    and receivers for them; returns once every matcher instance holds the subscriptions."""
    workload = Workload.make(notices)
    subscribe(fleet.platform.url("api"), fleet.hooks, workload)
    receivers = Receivers(fleet.mail, fleet.hooks, workload)
    until(lambda: matchers_hold(fleet, subscriptions_created(workload)), what="the matchers to hold the subscriptions")
    return workload, workload.expected(), receivers


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, f"{response.request.method} {response.request.url}: {response.text}"
    return dict(response.json())


# --- publishing -----------------------------------------------------------------------------------------------------


def document(notice: Notice) -> tuple[bytes, bytes]:
    """A notice as ingest receives it on `documents.received`: canonical JSON, keyed by its content hash."""
    body = notice.model_dump_json().encode()
    return hashlib.sha256(body).hexdigest().encode(), body


async def publish(bootstrap: str, notices: Sequence[Notice]) -> None:
    """Send notices onto `documents.received`, the topic `tenderwatch import` and pollers feed, all at once."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        headers = [(DOCUMENT_HEADERS.CONTENT_TYPE, b"application/json"), (DOCUMENT_HEADERS.ORIGIN, b"file")]
        sent = []
        for notice in notices:
            key, body = document(notice)
            sent.append(await producer.send(Topic.DOCUMENTS_RECEIVED.value, body, key=key, headers=headers))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def partition_of(notice_id: str, partitions: int = PARTITIONS) -> int:
    """The partition of `notices.received` and `notices.classified` a notice goes to (the producer's partitioner)."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(notice_id.encode(), every, every))


async def grow_topics(bootstrap: str, partitions: int = PARTITIONS) -> None:
    """Give every topic of the platform at least `partitions` partitions on a broker shared with other runs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [name for topic in Topic for name in (topic.value, topic.dlq) if name in existing]
        if not names:
            return
        described = await admin.describe_topics(names)
        grow = {t["topic"]: NewPartitions(partitions) for t in described if len(t["partitions"]) < partitions}
        if grow:
            await admin.create_partitions(grow)
    finally:
        await admin.close()


async def group_members(bootstrap: str, group: str) -> int:
    """How many members a consumer group has, as its coordinator says."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        [described] = response.groups
        return len(described[5])  # (error, group, state, protocol type, protocol, members)
    finally:
        await admin.close()


async def dead_letters(bootstrap: str, workload: Workload) -> list[str]:
    """The run's messages found in any dead-letter topic: each a line saying which and why."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    found = []
    try:
        topics = [name for name in await consumer.topics() if name in {topic.dlq for topic in Topic}]
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        if not partitions:
            return []
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)

        async def unread() -> bool:
            return any([await consumer.position(p) < ends[p] for p in partitions])

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and await unread():
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if workload.run.encode() in (record.value or b""):
                        reason = dict(record.headers).get("tw-error", b"").decode(errors="replace")
                        found.append(f"{record.topic}: {reason[:200]}")
    finally:
        await consumer.stop()
    return found


# --- what the receivers got -----------------------------------------------------------------------------------------


@dataclass
class Received:
    """Alerts of the run as the receivers saw them, by Message-ID and webhook-id, each copy counted."""

    emails: Counter[str]
    webhooks: Counter[str]
    webhook_notices: dict[str, set[str]]  # webhook-id -> the notice ids its copies carried
    bad_signatures: list[str]

    @property
    def email_copies(self) -> int:
        """Emails received again (an instance died between sending one and recording it)."""
        return sum(self.emails.values()) - len(self.emails)

    @property
    def webhook_copies(self) -> int:
        return sum(self.webhooks.values()) - len(self.webhooks)


class Receivers:
    """Reads the SMTP server and the webhook receiver incrementally (each message parsed once)."""

    def __init__(self, mail: MailSink, hooks: WebhookReceiver, workload: Workload) -> None:
        self._mail, self._hooks, self._workload = mail, hooks, workload
        self._emails_read = self._hooks_read = 0
        self._received = Received(Counter(), Counter(), defaultdict(set), [])
        self._parser = BytesHeaderParser(policy=policy.default)

    def read(self) -> Received:
        addresses = {s.email: s for s in self._workload.subscribers}
        paths = {s.hook_path: s for s in self._workload.subscribers}
        received = self._received
        mails = self._mail.messages()[self._emails_read :]
        self._emails_read += len(mails)
        for mail in mails:
            if not addresses.keys() & set(mail.recipients):
                continue
            received.emails[str(self._parser.parsebytes(mail.data)["Message-ID"])] += 1
        requests = self._hooks.requests()[self._hooks_read :]
        self._hooks_read += len(requests)
        now = int(time.time())
        for request in requests:
            subscriber = paths.get(request.path)
            if subscriber is None:
                continue
            webhook_id = request.headers.get("webhook-id", "")
            if not request.body:  # a sender killed mid-request: not a delivery, it is sent again with the same id
                continue
            received.webhooks[webhook_id] += 1
            received.webhook_notices[webhook_id].add(json.loads(request.body)["data"]["notice"]["notice_id"])
            try:
                verify(subscriber.secret, request.headers, request.body, now=now, tolerance=10**6)
            except SignatureError as exc:
                received.bad_signatures.append(f"{webhook_id}: {exc}")
        return received


@dataclass(frozen=True)
class Tally:
    expected: int
    missing_emails: list[ExpectedAlert]
    missing_webhooks: list[ExpectedAlert]
    unexpected_emails: list[str]
    unexpected_webhooks: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing_emails and not self.missing_webhooks

    def describe(self) -> str:
        sample = [f"{a.notice_id} -> {a.subscriber.email}" for a in (self.missing_emails + self.missing_webhooks)[:5]]
        return (
            f"{self.expected} alerts expected: {len(self.missing_emails)} emails and {len(self.missing_webhooks)} "
            f"webhooks missing (e.g. {', '.join(sample) or '-'}); {len(self.unexpected_emails)} unexpected emails, "
            f"{len(self.unexpected_webhooks)} unexpected webhooks"
        )


def tally(expected: Sequence[ExpectedAlert], received: Received) -> Tally:
    message_ids = {a.message_id for a in expected}
    webhook_ids = {a.webhook_id for a in expected}
    return Tally(
        expected=len(expected),
        missing_emails=[a for a in expected if a.message_id not in received.emails],
        missing_webhooks=[a for a in expected if a.webhook_id not in received.webhooks],
        unexpected_emails=sorted(received.emails.keys() - message_ids),
        unexpected_webhooks=sorted(received.webhooks.keys() - webhook_ids),
    )


def wait_for_alerts(
    receivers: Receivers,
    expected: Sequence[ExpectedAlert],
    *,
    timeout: float,
    progress: Callable[[], str] = lambda: "",
    while_waiting: Callable[[], object] = lambda: None,
) -> Tally:
    """Poll the receivers until every expected alert arrived by both channels; bounded, with what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        while_waiting()
        counted = tally(expected, receivers.read())
        if counted.complete:
            return counted
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f} s: {counted.describe()}; {progress()}")
        time.sleep(0.5)


# --- who did the work -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogLine:
    instance: str
    at: datetime
    notice_id: str


def _log_entries(platform: Platform, service: str, needle: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(instance, entry) for each line containing `needle` in the logs of every instance `service` ever had."""
    for path in sorted((platform.workdir / "log").glob(f"{service}*.log")):
        instance = path.stem
        if instance != service and not instance.removeprefix(f"{service}-").isdigit():
            continue
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if needle in raw:
                with contextlib.suppress(ValueError):  # a line cut short when its process was killed
                    yield instance, json.loads(raw)


def work_done(platform: Platform, service: str, message: str, workload: Workload) -> list[LogLine]:
    """The run's notices each instance of `service` logged `message` for."""
    return [
        LogLine(instance, datetime.fromisoformat(entry["ts"]), entry["notice_id"])
        for instance, entry in _log_entries(platform, service, message)
        if entry.get("msg") == message and workload.is_ours(entry.get("notice_id"))
    ]


def by_instance(lines: Iterable[LogLine]) -> dict[str, set[str]]:
    """Instance -> the notice ids it handled."""
    handled: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        handled[line.instance].add(line.notice_id)
    return dict(handled)


def partitions_of(notice_ids: Iterable[str]) -> list[int]:
    return sorted({partition_of(notice_id) for notice_id in notice_ids})


_ASSIGNED = "assigned to partitions"
_PARTITION = re.compile(r"topic='([^']+)', partition=(\d+)")


@dataclass(frozen=True)
class Assignment:
    instance: str
    at: datetime
    partitions: frozenset[int]


def assignments(platform: Platform, service: str, topic: Topic) -> list[Assignment]:
    """Each partition assignment the instances of `service` logged for `topic` (the consumer logs them), oldest
    first."""
    found = [
        Assignment(
            instance,
            datetime.fromisoformat(entry["ts"]),
            frozenset(int(p) for t, p in _PARTITION.findall(entry["msg"]) if t == topic.value),
        )
        for instance, entry in _log_entries(platform, service, _ASSIGNED)
        if entry.get("topic") == topic.value
    ]
    return sorted(found, key=lambda a: a.at)


def count_lines(path: Path, message: str) -> int:
    """How many lines of a JSON log say `message`."""
    needle = f'"msg": "{message}"'
    try:
        return sum(needle in line for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    except FileNotFoundError:
        return 0
