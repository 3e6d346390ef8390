"""Email delivery end to end on the real broker and database, with a real SMTP server (aiosmtpd on loopback).

The API and the notifier run in this process on the test stack; matches are published on `alerts.matched` as the
matcher would, and each email is read back from the SMTP server: headers, both bodies, pooling, retries on 4xx,
the suppression list on 5xx, digests, and the one-click unsubscribe link followed through the API.
"""

from __future__ import annotations

import email
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from html import unescape
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from pydantic import SecretStr

from schemas import (
    Criterion,
    Delivery,
    EmailFrequency,
    Match,
    MatchedSubscription,
    MatchReason,
    NoticeKind,
    NoticeSummary,
    SubscriptionChange,
    Topic,
    match_id_for,
)
from services.api import unsubscribe
from services.api.app import Api
from services.notifier import digests
from services.notifier.app import Notifier
from services.notifier.email import digest_queue
from services.notifier.email.message import list_id_for, message_id_for
from services.runtime.correlation import HEADER_CORRELATION_ID, HEADER_NOTICE_ID
from services.runtime.processes import free_port
from services.runtime.settings import Settings
from services.runtime.unsubscribe_tokens import make_token
from tests.integration.kafka_records import read_records
from tests.integration.polling import eventually

pytestmark = pytest.mark.integration

PUBLIC_BASE_URL = "http://127.0.0.1:8000"
DOMAIN = "alerts.tenderwatch.test"
_REASONS = [MatchReason(criterion=Criterion.REGION, values=["76"], notice_values=["76"])]


@dataclass
class Received:
    peer: tuple[str, int]
    recipients: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        parsed: EmailMessage = email.message_from_bytes(self.data, policy=policy.default)
        return parsed


@dataclass
class ScriptedSmtp:
    """Accepts everything, except the replies scripted per address for its next RCPT TO or DATA."""

    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    data_replies: dict[str, list[str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    rcpt_attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            self.rcpt_attempts[address] = self.rcpt_attempts.get(address, 0) + 1
            script = self.rcpt_replies.get(address)
            reply = script.pop(0) if script else "250 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            script = self.data_replies.get(envelope.rcpt_tos[0])
            reply = script.pop(0) if script else "250 Message accepted"
            if reply.startswith("250"):
                self.received.append(Received(session.peer, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return reply

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.recipients]


@dataclass
class Stack:
    settings: Settings
    api: Api
    notifier: Notifier
    client: httpx.AsyncClient
    smtp: ScriptedSmtp

    async def account(self, name: str) -> tuple[str, dict[str, str]]:
        created = await self.client.post("/v1/accounts", json={"name": name, "email": f"{name}@example.org"})
        assert created.status_code == 201, created.text
        return created.json()["id"], {"authorization": f"Bearer {created.json()['api_key']}"}

    async def subscription(self, auth: dict[str, str], name: str, delivery: dict[str, Any]) -> dict[str, Any]:
        created = await self.client.post(
            "/v1/subscriptions", json={"name": name, "filters": {"regions": ["76"]}, "delivery": delivery}, headers=auth
        )
        assert created.status_code == 201, created.text
        subscription: dict[str, Any] = created.json()
        return subscription

    async def publish(self, match: Match) -> None:
        await self.notifier.runtime.broker.publish(
            match.model_dump_json().encode(), Topic.ALERTS_MATCHED.value, key=match.subscriber_id.encode()
        )


@pytest_asyncio.fixture(scope="module")
async def stack(stack_env: dict[str, str], integration_database: str) -> AsyncIterator[Stack]:
    script = ScriptedSmtp()
    port = free_port()
    controller = Controller(script, hostname="127.0.0.1", port=port)
    controller.start()
    settings = Settings(
        kafka_bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_enable_idempotence=stack_env["KAFKA_ENABLE_IDEMPOTENCE"] == "true",
        database_url=integration_database,
        processing_attempts=3,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_pool_size=2,
        smtp_retry_schedule="0s,0s,0s",  # parsed like the environment variable: retried at once
        message_id_domain=DOMAIN,
        public_base_url=PUBLIC_BASE_URL,
        unsubscribe_secret="integration-tests-unsubscribe-secret",
    )
    api, notifier = Api(settings), Notifier(settings)
    try:
        async with api.runtime.lifespan(), notifier.runtime.lifespan():
            transport = httpx.ASGITransport(app=api.asgi())
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE_URL) as client:
                yield Stack(settings, api, notifier, client, script)
    finally:
        controller.stop()


async def _emails_to(stack: Stack, address: str, count: int = 1) -> list[Received]:
    async def probe() -> list[Received] | None:
        found = stack.smtp.to(address)
        return found if len(found) >= count else None

    return await eventually(probe, what=f"{count} email(s) to {address}")


def _bodies(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML parts, with the wire's CRLF line ends read as newlines."""
    parts = (message.get_body((subtype,)) for subtype in ("plain", "html"))
    text, html = (part.get_content().replace("\r\n", "\n") for part in parts if part is not None)
    return text, html


def _match(
    subscriber_id: str,
    subscriptions: list[MatchedSubscription],
    *,
    title: str,
    notice_id: str | None = None,
    deadline: datetime | None = None,
    matched_at: datetime | None = None,
) -> Match:
    notice = NoticeSummary(
        notice_id=notice_id or f"boamp:it-{time.time_ns()}",
        version="1",
        kind=NoticeKind.COMPETITION,
        title=title,
        description="Collecte et transport des déchets ménagers.",
        language="fr",
        buyer_name="Communauté de communes du Piémont Cévenol",
        departments=["30"],
        regions=["76"],
        countries=["FR"],
        deadline=deadline,
        source_url="https://www.boamp.fr/avis/detail/24-12345",
    )
    return Match(
        match_id=match_id_for(subscriber_id, notice.notice_id, notice.version),
        subscriber_id=subscriber_id,
        notice=notice,
        subscriptions=subscriptions,
        matched_at=matched_at or datetime.now(UTC),
    )


def _matched(subscription: dict[str, Any], **delivery: Any) -> MatchedSubscription:
    settings = {**subscription["delivery"], **delivery}
    settings.pop("webhook_endpoint_id", None)
    return MatchedSubscription(
        subscription_id=subscription["id"], name=subscription["name"], reasons=_REASONS, **settings
    )


async def _delivery_rows(stack: Stack, match: Match) -> list[Any]:
    rows: list[Any] = await stack.notifier.runtime.pool.fetch(
        "SELECT * FROM deliveries WHERE match_id = $1 ORDER BY target", match.match_id
    )
    return rows


async def test_an_alert_email_carries_its_headers_both_bodies_and_a_working_unsubscribe_link(stack: Stack) -> None:
    account, auth = await stack.account("collecte")
    address = f"veille-{time.time_ns()}@example.org"
    first = await stack.subscription(auth, "Collecte des déchets", {"email": address})
    second = await stack.subscription(auth, "Tout l'Occitanie", {"email": address.upper()})
    title = "Collecte des déchets <script>alert(1)</script> & <b>tri</b>"
    match = _match(account, [_matched(first), _matched(second)], title=title)
    await stack.publish(match)
    await stack.publish(match)  # redelivered by Kafka: still one email
    marker = _match(account, [_matched(first)], title="Marqueur")  # same subscriber: same partition, after both
    await stack.publish(marker)
    await _emails_to(stack, address, count=2)

    (received,) = [r for r in stack.smtp.to(address) if b"Marqueur" not in r.data]
    message = received.message()
    assert message["Message-ID"] == message_id_for(match.match_id, address, DOMAIN)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Id"] == list_id_for(account, DOMAIN)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(message["List-Unsubscribe"])
    assert link.startswith(f"<{PUBLIC_BASE_URL}/v1/unsubscribe/") and link.endswith(">")
    assert message["Subject"] == f"[tenderwatch] Appel d'offres — {title} (Communauté de communes du Piémont Cévenol)"
    text, html = _bodies(message)
    assert text.startswith(f"Appel d'offres — {title}\n")
    assert "Lieu d'exécution\u00a0: Gard (30) — Occitanie\n" in text
    assert "* Collecte des déchets\n  - Région\u00a0: 76 Occitanie\n* Tout l'Occitanie\n" in text
    assert f"Se désabonner de ces alertes\u00a0: {link[1:-1]}\n" in text
    assert "Collecte des déchets &lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;tri&lt;/b&gt;</h1>" in html
    assert "<script" not in html and "<b>" not in html
    assert f'href="{link[1:-1]}"' in html

    rows = await _delivery_rows(stack, match)
    assert [(r["channel"], r["target"], r["status"], r["attempts"]) for r in rows] == [
        ("email", address.lower(), "sent", 1)
    ]
    events = [
        Delivery.model_validate_json(r.value)
        for r in await read_records(stack.settings, Topic.ALERTS_DELIVERED.value, key=account.encode(), want=2)
    ]
    assert {(e.match_id, e.status.value) for e in events} >= {(match.match_id, "sent")}

    # The link, as a mail client follows it: GET shows the page and changes nothing.
    path = urlsplit(link[1:-1]).path
    page = await stack.client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Se désabonner ?" in page.text and "Unsubscribe?" in page.text
    assert "<li>Collecte des déchets</li>" in page.text and "<li>Tout l&#x27;Occitanie</li>" in page.text
    assert '<form method="post"' in page.text and 'name="List-Unsubscribe" value="One-Click"' in page.text
    for subscription in (first, second):
        current = await stack.client.get(f"/v1/subscriptions/{subscription['id']}", headers=auth)
        assert current.json()["active"] is True

    # RFC 8058 one-click: a POST with List-Unsubscribe=One-Click pauses both, answers 200, no redirect.
    done = await stack.client.post(
        path, content=b"List-Unsubscribe=One-Click", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert done.status_code == 200
    assert "Vous êtes désabonné" in done.text and "You are unsubscribed" in done.text
    assert "location" not in done.headers
    for subscription in (first, second):
        current = await stack.client.get(f"/v1/subscriptions/{subscription['id']}", headers=auth)
        assert current.json()["active"] is False
        changes = await read_records(
            stack.settings, Topic.SUBSCRIPTIONS_CHANGES.value, key=subscription["id"].encode(), want=2
        )
        published = [SubscriptionChange.model_validate_json(r.value).subscription for r in changes]
        assert [s.active for s in published] == [True, False]  # created, then paused for the matcher

    again = await stack.client.post(
        path, content=b"List-Unsubscribe=One-Click", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert again.status_code == 200 and "Déjà désabonné" in again.text


async def test_unsubscribe_refuses_what_is_not_a_signed_link(stack: Stack) -> None:
    account, auth = await stack.account("curieux")
    address = f"curieux-{time.time_ns()}@example.org"
    subscription = await stack.subscription(auth, "Veille", {"email": address})
    await stack.publish(_match(account, [_matched(subscription)], title="Voirie"))
    (received,) = await _emails_to(stack, address)
    path = urlsplit(str(received.message()["List-Unsubscribe"])[1:-1]).path
    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    form = {"content-type": "application/x-www-form-urlencoded"}

    malformed = await stack.client.get("/v1/unsubscribe/not-a-token")
    assert malformed.status_code == 400 and "Lien de désabonnement invalide" in malformed.text
    forged = await stack.client.post(f"/v1/unsubscribe/{tampered}", content=b"List-Unsubscribe=One-Click", headers=form)
    assert forged.status_code == 404 and "Unknown unsubscribe link" in forged.text
    no_body = await stack.client.post(path, content=b"", headers=form)
    assert no_body.status_code == 400 and "List-Unsubscribe=One-Click" in no_body.text
    current = await stack.client.get(f"/v1/subscriptions/{subscription['id']}", headers=auth)
    assert current.json()["active"] is True

    # the page's own button posts a multipart form in some browsers: accepted too
    boundary = "----tw"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    button = await stack.client.post(
        path, content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert button.status_code == 200 and "Vous êtes désabonné" in button.text
    current = await stack.client.get(f"/v1/subscriptions/{subscription['id']}", headers=auth)
    assert current.json()["active"] is False


async def test_emails_share_pooled_connections(stack: Stack) -> None:
    account, auth = await stack.account("pool")
    addresses = [f"pool-{n}-{time.time_ns()}@example.org" for n in range(8)]
    before = stack.notifier.email.smtp.connections_opened
    for address in addresses:
        subscription = await stack.subscription(auth, f"Veille {address[:6]}", {"email": address})
        await stack.publish(_match(account, [_matched(subscription)], title=f"Avis pour {address}"))
    received = [(await _emails_to(stack, address))[0] for address in addresses]
    assert len(received) == 8
    assert len({r.peer for r in received}) <= stack.notifier.email.smtp.size == 2
    assert stack.notifier.email.smtp.connections_opened - before <= 2


async def test_a_deferred_email_is_retried_with_the_same_message_id(stack: Stack) -> None:
    account, auth = await stack.account("differe")
    address = f"differe-{time.time_ns()}@example.org"
    stack.smtp.data_replies[address] = ["451 4.3.0 Try again later"]
    subscription = await stack.subscription(auth, "Veille", {"email": address})
    match = _match(account, [_matched(subscription)], title="Balayage")
    await stack.publish(match)
    (received,) = await _emails_to(stack, address)
    assert received.message()["Message-ID"] == message_id_for(match.match_id, address, DOMAIN)

    async def settled() -> list[Any] | None:
        rows = await _delivery_rows(stack, match)
        return rows if rows and rows[0]["status"] == "sent" else None

    (row,) = await eventually(settled, what="the delivery to be recorded as sent")
    attempts = await stack.notifier.runtime.pool.fetch(
        "SELECT attempt, outcome, detail FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
        row["delivery_id"],
    )
    assert [(a["attempt"], a["outcome"], a["detail"]) for a in attempts] == [
        (1, "retry", "SMTP 451 4.3.0 Try again later"),
        (2, "sent", "Message accepted"),
    ]


async def test_the_delivered_event_carries_the_trace_of_the_match_it_came_from(stack: Stack) -> None:
    account, auth = await stack.account("trace")
    address = f"trace-{time.time_ns()}@example.org"
    subscription = await stack.subscription(auth, "Veille", {"email": address})
    match = _match(account, [_matched(subscription)], title="Tracé")
    trace = f"trace-{time.time_ns()}"
    await stack.notifier.runtime.broker.publish(
        match.model_dump_json().encode(),
        Topic.ALERTS_MATCHED.value,
        key=account.encode(),
        headers={HEADER_CORRELATION_ID: trace},
    )
    await _emails_to(stack, address)
    (record,) = await read_records(stack.settings, Topic.ALERTS_DELIVERED.value, key=account.encode(), want=1)
    headers = {name: value.decode() for name, value in record.headers}
    assert Delivery.model_validate_json(record.value).match_id == match.match_id
    assert headers[HEADER_CORRELATION_ID] == trace
    assert headers[HEADER_NOTICE_ID] == match.notice.notice_id
    (row,) = await _delivery_rows(stack, match)
    assert row["correlation_id"] == trace


async def test_links_signed_with_the_previous_key_work_only_while_it_is_set(stack: Stack) -> None:
    _account, auth = await stack.account("rotation")
    address = f"rotation-{time.time_ns()}@example.org"
    subscription = await stack.subscription(auth, "Veille", {"email": address})
    old_key = "the-unsubscribe-key-before-the-rotation"
    path = f"/v1/unsubscribe/{make_token(old_key, [subscription['id']], address)}"

    async def page(previous: str | None) -> httpx.Response:
        settings = stack.settings.model_copy(update={"unsubscribe_previous_secret": previous and SecretStr(previous)})
        app = FastAPI()
        app.include_router(unsubscribe.router(settings, stack.api.runtime))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_BASE_URL) as client:
            return await client.get(path)

    refused, accepted = await page(None), await page(old_key)
    assert refused.status_code == 404 and "Unknown unsubscribe link" in refused.text
    assert accepted.status_code == 200 and '<form method="post"' in accepted.text and "Veille" in accepted.text


async def test_a_refused_address_is_suppressed_and_never_tried_again(stack: Stack) -> None:
    account, auth = await stack.account("refuse")
    address = f"inconnu-{time.time_ns()}@example.org"
    stack.smtp.rcpt_replies[address] = ["550 5.1.1 No such user here"]
    subscription = await stack.subscription(auth, "Veille", {"email": address})
    first = _match(account, [_matched(subscription)], title="Premier")
    await stack.publish(first)

    async def suppressed(match: Match) -> list[Any] | None:
        rows = await _delivery_rows(stack, match)
        return rows if rows and rows[0]["status"] == "suppressed" else None

    (row,) = await eventually(lambda: suppressed(first), what="the first delivery to be suppressed")
    assert row["last_error"] == "recipient refused: 550 5.1.1 No such user here"
    reason = await stack.notifier.runtime.pool.fetchval(
        "SELECT reason FROM email_suppressions WHERE address = $1", address
    )
    assert reason == "recipient refused: 550 5.1.1 No such user here"

    second = _match(account, [_matched(subscription)], title="Second")
    await stack.publish(second)
    (row,) = await eventually(lambda: suppressed(second), what="the second delivery to be suppressed")
    assert row["last_error"] == f"{address} is on the suppression list: recipient refused: 550 5.1.1 No such user here"
    assert stack.smtp.rcpt_attempts[address] == 1  # the server was asked once, never again
    assert stack.smtp.to(address) == []


async def test_a_daily_digest_groups_the_notices_of_its_period_in_one_email_by_deadline(stack: Stack) -> None:
    account, auth = await stack.account("digest")
    address = f"digest-{time.time_ns()}@example.org"
    hour = (datetime.now(ZoneInfo("Europe/Paris")).hour + 12) % 24  # half a day away: no real digest time passes
    delivery = {"email": address, "email_frequency": "daily", "digest_hour": hour, "language": "fr"}
    subscription = await stack.subscription(auth, "Sélection quotidienne", delivery)
    other = await stack.subscription(auth, "Autre sélection", {**delivery, "email": address.upper()})
    now = datetime.now(UTC)
    deadlines = [now + timedelta(days=30), now + timedelta(days=10), None, now + timedelta(days=20)]
    matches = [
        _match(account, [_matched(subscription), _matched(other)], title=f"Avis {n}", deadline=deadline)
        for n, deadline in enumerate(deadlines)
    ]
    for match in matches:
        await stack.publish(match)

    async def held() -> list[Any] | None:
        rows = [r for m in matches for r in await _delivery_rows(stack, m)]
        return rows if len(rows) == 4 and {r["status"] for r in rows} == {"held"} else None

    rows = await eventually(held, what="four held deliveries")
    schedule = digests.DigestSchedule(EmailFrequency.DAILY, hour=hour)
    send_time = digests.next_send_time(schedule, matches[0].matched_at)
    assert {r["digest_at"] for r in rows} == {send_time}
    assert len({r["digest_id"] for r in rows}) == 1  # one digest for the address and the period

    # Other tests' digests may be due at these times too: what is asserted is this address's mail.
    await stack.notifier.email.run_digests(now=send_time - timedelta(seconds=1))
    assert stack.smtp.to(address) == []  # not yet
    await stack.notifier.email.run_digests(now=send_time + timedelta(seconds=1))
    (received,) = stack.smtp.to(address)
    message = received.message()
    digest_id = rows[0]["digest_id"]
    assert message["Message-ID"] == message_id_for(digest_id, address, DOMAIN)
    assert message["List-Unsubscribe"].startswith(f"<{PUBLIC_BASE_URL}/v1/unsubscribe/")
    assert message["Subject"].startswith("[tenderwatch] Sélection du jour — 4 avis (")
    text, html = _bodies(message)
    order = [text.index(f"] Avis {n}\n") for n in (1, 3, 0, 2)]  # by deadline, the one without last
    assert order == sorted(order)
    assert html.index(">Avis 1</a>") < html.index(">Avis 3</a>") < html.index(">Avis 0</a>") < html.index(">Avis 2</a>")

    rows = [r for m in matches for r in await _delivery_rows(stack, m)]
    assert {(r["status"], r["digest_id"]) for r in rows} == {("sent", digest_id)}
    await stack.notifier.email.run_digests(now=send_time + timedelta(hours=1))
    assert len(stack.smtp.to(address)) == 1  # sent once
    records = await read_records(stack.settings, Topic.ALERTS_DELIVERED.value, key=account.encode(), want=4)
    events = [Delivery.model_validate_json(r.value) for r in records]
    assert {(e.match_id, e.status.value) for e in events} == {(m.match_id, "sent") for m in matches}
    # Each notice of the digest keeps the trace of its own alerts.matched message.
    traces = {
        event.delivery_id: dict(record.headers)[HEADER_CORRELATION_ID].decode()
        for event, record in zip(events, records, strict=True)
    }
    assert traces == {r["delivery_id"]: r["correlation_id"] for r in rows}
    assert len(set(traces.values())) == 4

    # A notice recorded after the digest went out waits for the next one: nothing is sent twice, nothing lost.
    late = _match(account, [_matched(subscription)], title="Avis tardif", matched_at=send_time + timedelta(minutes=5))
    await stack.publish(late)
    (late_row,) = await eventually(lambda: _delivery_rows(stack, late), what="the late delivery")
    assert late_row["status"] == "held"
    assert late_row["digest_at"] == digests.next_send_time(schedule, send_time + timedelta(minutes=5))


async def test_a_digest_resent_after_a_crash_keeps_its_message_id(stack: Stack) -> None:
    account, auth = await stack.account("crash")
    address = f"crash-{time.time_ns()}@example.org"
    hour = (datetime.now(ZoneInfo("Europe/Paris")).hour + 12) % 24
    subscription = await stack.subscription(
        auth, "Hebdo", {"email": address, "email_frequency": "weekly", "digest_hour": hour, "digest_weekday": 3}
    )
    match = _match(account, [_matched(subscription)], title="Avis hebdomadaire")
    await stack.publish(match)
    (row,) = await eventually(lambda: _delivery_rows(stack, match), what="the held delivery")
    send_time = row["digest_at"]
    assert send_time.astimezone(ZoneInfo("Europe/Paris")).isoweekday() == 3

    # An instance claims the digest, sends it, and dies before recording it.
    (claimed,) = [
        d
        for d in await digest_queue.claim_due(stack.notifier.runtime.pool, now=send_time, limit=100)
        if d.digest_id == row["digest_id"]
    ]
    assert claimed.attempts == 1
    await stack.notifier.email.run_digests(now=send_time + timedelta(seconds=30))
    assert stack.smtp.to(address) == []  # its lease holds: nobody else takes it yet
    # Once the lease is over, another instance takes it again: the same email, the same Message-ID.
    await stack.notifier.email.run_digests(now=send_time + timedelta(minutes=3))
    (received,) = stack.smtp.to(address)
    assert received.message()["Message-ID"] == message_id_for(row["digest_id"], address, DOMAIN)
    assert received.message()["Subject"].startswith("[tenderwatch] Sélection de la semaine — 1 avis (")
    (row,) = await _delivery_rows(stack, match)
    assert (row["status"], row["attempts"]) == ("sent", 2)


async def test_a_digest_for_a_suppressed_address_sends_nothing(stack: Stack) -> None:
    account, auth = await stack.account("supprime")
    address = f"supprime-{time.time_ns()}@example.org"
    await digest_queue.suppress(stack.notifier.runtime.pool, address, "recipient refused: 550 5.1.1 gone")
    hour = (datetime.now(ZoneInfo("Europe/Paris")).hour + 12) % 24
    subscription = await stack.subscription(
        auth, "Veille", {"email": address, "email_frequency": "daily", "digest_hour": hour}
    )
    match = _match(account, [_matched(subscription)], title="Avis")
    await stack.publish(match)
    (row,) = await eventually(lambda: _delivery_rows(stack, match), what="the held delivery")
    await stack.notifier.email.run_digests(now=row["digest_at"] + timedelta(seconds=1))
    (row,) = await _delivery_rows(stack, match)
    assert row["status"] == "suppressed"
    assert stack.smtp.rcpt_attempts.get(address) is None


async def test_a_changed_notice_is_sent_again_saying_what_changed_and_an_unchanged_version_is_not(
    stack: Stack,
) -> None:
    account, auth = await stack.account("rectificatifs")
    address = f"rectif-{time.time_ns()}@example.org"
    subscription = await stack.subscription(auth, "Collecte", {"email": address})
    first = _match(
        account,
        [_matched(subscription)],
        title="Collecte des colonnes de verre",
        deadline=datetime(2026, 4, 3, 10, 0, tzinfo=UTC),
    )
    await stack.publish(first)
    await _emails_to(stack, address)
    later = first.notice.model_copy(
        update={"version": "2", "deadline": datetime(2026, 4, 17, 10, 0, tzinfo=UTC), "is_change": True}
    )
    second = first.model_copy(update={"notice": later, "match_id": match_id_for(account, later.notice_id, "2")})
    again = later.model_copy(update={"version": "3"})  # a new version where nothing a subscriber sees changed
    third = first.model_copy(update={"notice": again, "match_id": match_id_for(account, again.notice_id, "3")})
    await stack.publish(second)
    await stack.publish(third)
    marker = _match(account, [_matched(subscription)], title="Marqueur de fin")
    await stack.publish(marker)
    emails = await _emails_to(stack, address, count=3)

    assert len(stack.smtp.to(address)) == 3  # first version, the update, the marker: nothing for version 3
    update = next(
        r.message() for r in emails if r.message()["Message-ID"] == message_id_for(second.match_id, address, DOMAIN)
    )
    text, html = _bodies(update)
    assert "Ce qui a changé" in text and "Ce qui a changé" in html
    assert "Date limite de réponse" in text
    assert "vendredi 3 avril 2026" in text and "vendredi 17 avril 2026" in text
    [row] = await _delivery_rows(stack, third)
    assert row["status"] == "suppressed" and "since version 2" in row["last_error"]


async def test_a_call_for_tender_after_a_planned_purchase_says_so(stack: Stack) -> None:
    account, auth = await stack.account("programmation")
    address = f"plan-{time.time_ns()}@example.org"
    subscription = await stack.subscription(auth, "Voirie", {"email": address})
    plan = _match(account, [_matched(subscription)], title="Réfection de la voirie du chemin de Lalande")
    plan = plan.model_copy(update={"notice": plan.notice.model_copy(update={"kind": NoticeKind.PLANNING})})
    await stack.publish(plan)
    await _emails_to(stack, address)
    call = _match(account, [_matched(subscription)], title="Travaux de réfection de la voirie - chemin de Lalande")
    await stack.publish(call)
    emails = await _emails_to(stack, address, count=2)

    message = next(
        r.message() for r in emails if r.message()["Message-ID"] == message_id_for(call.match_id, address, DOMAIN)
    )
    text, html = _bodies(message)
    assert "fait maintenant l'objet d'un appel d'offres" in text
    assert "fait maintenant l'objet d'un appel d'offres" in unescape(html)
    [row] = await _delivery_rows(stack, call)
    assert row["announced_by"] == plan.notice.notice_id
