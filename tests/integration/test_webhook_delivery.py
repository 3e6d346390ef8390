"""Webhooks on the real broker and database, to real HTTP receivers on loopback that misbehave on purpose.

Each test runs the notifier (its consumers, its dispatcher, its internal routes) and publishes endpoint changes and
matches on the real topics. Time is compressed through the settings: retries a few hundred milliseconds apart, an
endpoint disabled after a second of failures instead of five days.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import standardwebhooks
import uvicorn

from schemas import Criterion, Match, MatchedSubscription, MatchReason, NoticeKind, NoticeSummary, Topic, match_id_for
from schemas import WebhookEndpoint as EndpointEvent
from services.api.app import Api
from services.notifier.app import Notifier
from services.notifier.email import digest_queue
from services.notifier.webhooks.signing import generate_secret
from services.platform.sinks import MailSink
from services.runtime.processes import free_port
from services.runtime.settings import Settings
from tests.integration.polling import eventually
from tests.unit.notifier.test_webhook_sender import Answer, Received, ScriptedReceiver

pytestmark = pytest.mark.integration

_FAST_RETRIES = "0s," + ",".join(["200ms"] * 12)


def _settings(base: Settings, **changes: Any) -> Settings:
    values = {"webhook_allow_private": True, "webhook_retry_schedule": _FAST_RETRIES, **changes}
    return Settings.model_validate({**base.model_dump(), **values})


@contextlib.asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    await notifier.runtime.start()
    try:
        yield notifier
    finally:
        await notifier.runtime.stop()


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """`app` on a free loopback port, lifespan included, as the service runs it."""
    port = free_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _true(server.started), "the server to start", within=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _true(value: bool) -> bool:
    return value


def _stamp() -> str:
    return f"{time.time_ns()}"


def _match(subscriber: str, endpoint_id: str, *, title: str = "Entretien de voirie") -> Match:
    notice_id = f"test:{_stamp()}"
    summary = NoticeSummary(
        notice_id=notice_id, version="01", kind=NoticeKind.COMPETITION, title=title, language="fr",
        buyer_name="Ville de Toulouse", departments=["31"],
    )  # fmt: skip
    return Match(
        match_id=match_id_for(subscriber, notice_id, "01"),
        subscriber_id=subscriber,
        notice=summary,
        subscriptions=[
            MatchedSubscription(
                subscription_id="sub_voirie",
                name="Voirie",
                reasons=[MatchReason(criterion=Criterion.DEPARTMENT, values=["31"], notice_values=["31"])],
                webhook_endpoint_id=endpoint_id,
            )
        ],
        matched_at=datetime.now(UTC),
    )


async def _publish_endpoint(
    notifier: Notifier, subscriber: str, url: str, *, secret: str, owner_email: str | None = None
) -> str:
    endpoint_id = f"we_{_stamp()}"
    event = EndpointEvent(
        endpoint_id=endpoint_id, subscriber_id=subscriber, url=url, secret=secret, owner_email=owner_email,
        updated_at=datetime.now(UTC),
    )  # fmt: skip
    await notifier.runtime.broker.publish(event, topic=Topic.WEBHOOK_ENDPOINTS_CHANGES.value, key=endpoint_id.encode())

    async def known() -> bool:
        return bool(
            await notifier.runtime.pool.fetchval(
                "SELECT true FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id
            )
        )

    await eventually(known, f"the notifier to hear of endpoint {endpoint_id}")
    return endpoint_id


async def _publish_match(notifier: Notifier, match: Match) -> None:
    await notifier.runtime.broker.publish(match, topic=Topic.ALERTS_MATCHED.value, key=match.subscriber_id.encode())


async def _delivery(notifier: Notifier, match: Match) -> dict[str, Any] | None:
    row = await notifier.runtime.pool.fetchrow(
        "SELECT delivery_id, status, attempts, last_error FROM deliveries WHERE match_id = $1 AND channel = 'webhook'",
        match.match_id,
    )
    return None if row is None else dict(row)


async def _settled(notifier: Notifier, match: Match, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await _delivery(notifier, match)
        return found if found is not None and found["status"] == status else None

    return await eventually(check, f"the delivery of {match.match_id} to be {status}")


async def _attempts(notifier: Notifier, delivery_id: str) -> list[tuple[int, str, str]]:
    rows = await notifier.runtime.pool.fetch(
        "SELECT attempt, outcome, detail FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt", delivery_id
    )
    return [(r["attempt"], r["outcome"], r["detail"]) for r in rows]


def _verified(secret: str, request: Received) -> dict[str, Any]:
    payload: dict[str, Any] = standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    return payload


async def _received(receiver: ScriptedReceiver, count: int, what: str) -> list[Received]:
    async def arrived() -> list[Received] | None:
        return receiver.received if len(receiver.received) >= count else None

    return await eventually(arrived, what)


# --- retries ------------------------------------------------------------------------------------------------


async def test_a_500_is_retried_with_the_same_webhook_id_and_body_until_a_200(settings: Settings) -> None:
    answers = iter([Answer(500), Answer(200)])
    secret = generate_secret()
    async with (
        ScriptedReceiver(lambda _request: next(answers)) as receiver,
        running(Notifier(_settings(settings))) as notifier,
    ):
        subscriber = f"acc_{_stamp()}"
        endpoint_id = await _publish_endpoint(notifier, subscriber, f"{receiver.url}/hooks", secret=secret)
        match = _match(subscriber, endpoint_id)
        await _publish_match(notifier, match)
        delivery = await _settled(notifier, match, "sent")
        assert await _attempts(notifier, delivery["delivery_id"]) == [(1, "retry", "HTTP 500"), (2, "sent", "HTTP 200")]
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-id"].startswith("msg_")
    assert first.body == second.body
    for request in (first, second):
        payload = _verified(secret, request)
        assert payload["type"] == "notice.matched"
        assert payload["data"]["match_id"] == match.match_id
        assert payload["data"]["subscriptions"][0]["reasons"][0]["text"] == "Département\u00a0: 31 Haute-Garonne"


async def test_an_endpoint_that_does_not_answer_in_time_is_retried(settings: Settings) -> None:
    never = asyncio.Event()
    answers = iter([Answer(hold=never), Answer(200)])
    secret = generate_secret()
    async with (
        ScriptedReceiver(lambda _request: next(answers)) as receiver,
        running(Notifier(_settings(settings, webhook_timeout=0.5))) as notifier,
    ):
        subscriber = f"acc_{_stamp()}"
        endpoint_id = await _publish_endpoint(notifier, subscriber, receiver.url, secret=secret)
        match = _match(subscriber, endpoint_id)
        await _publish_match(notifier, match)
        delivery = await _settled(notifier, match, "sent")
        assert await _attempts(notifier, delivery["delivery_id"]) == [
            (1, "retry", "the endpoint did not answer within 0.5 s"),
            (2, "sent", "HTTP 200"),
        ]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1


async def test_retry_after_lengthens_the_wait_before_the_next_attempt(settings: Settings) -> None:
    answers = iter([Answer(503, {"retry-after": "2"}), Answer(200)])
    secret = generate_secret()
    async with (
        ScriptedReceiver(lambda _request: next(answers)) as receiver,
        running(Notifier(_settings(settings, webhook_retry_schedule="0s,100ms,100ms,1h"))) as notifier,
    ):
        subscriber = f"acc_{_stamp()}"
        endpoint_id = await _publish_endpoint(notifier, subscriber, receiver.url, secret=secret)
        match = _match(subscriber, endpoint_id)
        await _publish_match(notifier, match)

        async def after_first_attempt() -> timedelta | None:
            # settle writes the attempt and the next attempt time in one transaction: both read the same now()
            wait: timedelta | None = await notifier.runtime.pool.fetchval(
                """SELECT d.next_attempt_at - a.at FROM deliveries d JOIN delivery_attempts a USING (delivery_id)
                   WHERE d.match_id = $1 AND d.status = 'retrying' AND d.attempts = 1 AND a.attempt = 1""",
                match.match_id,
            )
            return wait

        assert await eventually(after_first_attempt, "the first attempt") == timedelta(seconds=2)  # not 100 ms
        delivery = await _settled(notifier, match, "sent")
        assert await _attempts(notifier, delivery["delivery_id"]) == [
            (1, "retry", "HTTP 503, Retry-After 2 s"),
            (2, "sent", "HTTP 200"),
        ]
    assert len(receiver.received) == 2


# --- disabling ------------------------------------------------------------------------------------------------


async def test_a_410_disables_the_endpoint_and_nothing_more_is_sent_to_it(settings: Settings) -> None:
    async with (
        ScriptedReceiver(lambda _request: Answer(410)) as receiver,
        running(Notifier(_settings(settings))) as notifier,
    ):
        subscriber = f"acc_{_stamp()}"
        endpoint_id = await _publish_endpoint(notifier, subscriber, receiver.url, secret=generate_secret())
        gone = _match(subscriber, endpoint_id)
        await _publish_match(notifier, gone)
        assert (await _settled(notifier, gone, "suppressed"))["attempts"] == 1
        later = _match(subscriber, endpoint_id, title="Balayage des rues")
        await _publish_match(notifier, later)
        suppressed = await _settled(notifier, later, "suppressed")
        endpoint = await notifier.runtime.pool.fetchrow(
            "SELECT active, disabled_reason FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id
        )
    assert len(receiver.received) == 1
    assert suppressed["last_error"] == (
        "the webhook endpoint is disabled: HTTP 410 Gone: the endpoint asked to be disabled"
    )
    assert (endpoint["active"], endpoint["disabled_reason"]) == (
        False,
        "HTTP 410 Gone: the endpoint asked to be disabled",
    )


async def test_an_endpoint_failing_for_the_whole_period_is_disabled_and_its_owner_emailed(
    settings: Settings, tmp_path: Path
) -> None:
    mail = MailSink(tmp_path / "mail")
    mail.start()
    try:
        async with (
            ScriptedReceiver(lambda _request: Answer(500)) as receiver,
            running(
                Notifier(_settings(settings, webhook_disable_after="1s", smtp_host=mail.host, smtp_port=mail.port))
            ) as notifier,
        ):
            subscriber = f"acc_{_stamp()}"
            endpoint_id = await _publish_endpoint(
                notifier, subscriber, f"{receiver.url}/down", secret=generate_secret(), owner_email="ops@dupont.example"
            )
            failing = _match(subscriber, endpoint_id)
            await _publish_match(notifier, failing)
            disabled = await _settled(notifier, failing, "suppressed")
            await eventually(lambda: _true(len(mail.messages()) >= 1), "the owner's notice")
            calls = len(receiver.received)
            later = _match(subscriber, endpoint_id, title="Balayage des rues")
            await _publish_match(notifier, later)
            await _settled(notifier, later, "suppressed")
            endpoint = await notifier.runtime.pool.fetchrow(
                "SELECT active, owner_notified_at FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id
            )
    finally:
        mail.stop()
    assert calls >= 2  # it kept failing for the whole period before being disabled
    assert len(receiver.received) == calls  # nothing more once disabled
    assert disabled["last_error"].startswith("the webhook endpoint is now disabled: every call failed since ")
    assert disabled["last_error"].endswith("UTC; last: HTTP 500")
    assert endpoint["active"] is False
    assert endpoint["owner_notified_at"] is not None
    (notice,) = mail.messages()
    assert notice.recipients == ["ops@dupont.example"]
    message = notice.message()
    assert message["Subject"] == f"tenderwatch : webhook désactivé / webhook disabled ({endpoint_id})"
    assert message["Message-ID"].strip().startswith(f"<webhook-disabled.{endpoint_id}.")
    assert message["Auto-Submitted"] == "auto-generated"
    text = message.get_content()
    assert f"tenderwatch stopped calling your webhook {receiver.url}/down ({endpoint_id})" in text
    assert "Reason: every call failed since " in text
    assert f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret" in text


async def test_the_owner_of_a_disabled_endpoint_is_not_emailed_at_a_suppressed_address(
    settings: Settings, tmp_path: Path
) -> None:
    mail = MailSink(tmp_path / "mail")
    mail.start()
    owner = f"parti-{_stamp()}@dupont.example"
    try:
        async with (
            ScriptedReceiver(lambda _request: Answer(410)) as receiver,
            running(Notifier(_settings(settings, smtp_host=mail.host, smtp_port=mail.port))) as notifier,
        ):
            await digest_queue.suppress(notifier.runtime.pool, owner, "recipient refused: 550 5.1.1 gone")
            subscriber = f"acc_{_stamp()}"
            endpoint_id = await _publish_endpoint(
                notifier, subscriber, f"{receiver.url}/gone", secret=generate_secret(), owner_email=owner
            )
            gone = _match(subscriber, endpoint_id)
            await _publish_match(notifier, gone)
            await _settled(notifier, gone, "suppressed")

            async def settled_notice() -> Any:
                return await notifier.runtime.pool.fetchval(
                    "SELECT owner_notified_at FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id
                )

            await eventually(settled_notice, "the owner's notice to be settled")
    finally:
        mail.stop()
    assert mail.messages() == []  # the notice is settled without an email to the suppressed address


# --- a slow endpoint ------------------------------------------------------------------------------------------


async def test_a_slow_endpoint_never_delays_the_others(settings: Settings) -> None:
    release = asyncio.Event()
    async with (
        ScriptedReceiver(lambda _request: Answer(hold=release)) as slow,
        ScriptedReceiver() as fast,
        running(Notifier(_settings(settings, webhook_max_in_flight_per_endpoint=2, webhook_timeout=60.0))) as notifier,
    ):
        subscriber = f"acc_{_stamp()}"
        slow_id = await _publish_endpoint(notifier, subscriber, slow.url, secret=generate_secret())
        fast_id = await _publish_endpoint(notifier, subscriber, fast.url, secret=generate_secret())
        slow_matches = [_match(subscriber, slow_id, title=f"Lent {i}") for i in range(6)]
        fast_matches = [_match(subscriber, fast_id, title=f"Rapide {i}") for i in range(10)]
        for match in slow_matches + fast_matches:  # the slow endpoint's deliveries are due first
            await _publish_match(notifier, match)
        for match in fast_matches:
            await _settled(notifier, match, "sent")
        # every fast delivery went through while the slow endpoint still held its first requests
        assert len(fast.received) == 10
        assert (slow.in_flight, slow.max_in_flight, len(slow.received)) == (2, 2, 2)
        release.set()
        for match in slow_matches:
            await _settled(notifier, match, "sent")
    assert slow.max_in_flight == 2
    assert len(slow.received) == 6


# --- idempotency ----------------------------------------------------------------------------------------------


async def test_a_redelivered_match_or_a_crash_after_sending_never_makes_a_new_identity(settings: Settings) -> None:
    secret = generate_secret()
    async with ScriptedReceiver() as receiver, running(Notifier(_settings(settings))) as notifier:
        subscriber = f"acc_{_stamp()}"
        endpoint_id = await _publish_endpoint(notifier, subscriber, receiver.url, secret=secret)
        match = _match(subscriber, endpoint_id)
        await _publish_match(notifier, match)
        await _publish_match(notifier, match)  # Kafka redelivers it
        sentinel = _match(subscriber, endpoint_id, title="Après")  # same key, same partition: read after both
        await _publish_match(notifier, sentinel)
        await _settled(notifier, sentinel, "sent")
        delivery = await _settled(notifier, match, "sent")
        assert len(receiver.requests_to("/")) == 2  # the match once, the sentinel once
        # An instance killed after sending and before recording leaves its claim behind; once it expires, the
        # delivery is sent again, as the same message.
        await notifier.runtime.pool.execute(
            """UPDATE deliveries SET status = 'sending', locked_until = now() - interval '1 second'
               WHERE delivery_id = $1""",
            delivery["delivery_id"],
        )
        await eventually(lambda: _true(len(receiver.received) == 3), "the resend after the crash")
        await _settled(notifier, match, "sent")
    first, resent = (r for r in receiver.received if _verified(secret, r)["data"]["match_id"] == match.match_id)
    assert first.headers["webhook-id"] == resent.headers["webhook-id"]
    assert first.body == resent.body


# --- the API: history, replay, rotation -----------------------------------------------------------------------


async def test_history_replay_and_secret_rotation_through_the_api(settings: Settings) -> None:
    async with ScriptedReceiver() as receiver:
        notifier = Notifier(_settings(settings))
        async with served(notifier.asgi()) as notifier_url:
            api = Api(_settings(settings, notifier_url=notifier_url))
            async with (
                api.runtime.lifespan(),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=api.asgi()), base_url="http://api") as client,
            ):
                await _through_the_api(client, notifier, receiver)


async def _through_the_api(client: httpx.AsyncClient, notifier: Notifier, receiver: ScriptedReceiver) -> None:
    async def account(name: str) -> tuple[str, dict[str, str]]:
        created = await client.post("/v1/accounts", json={"name": name, "email": f"{name}@example.org"})
        body = created.json()
        return body["id"], {"authorization": f"Bearer {body['api_key']}"}

    owner, auth = await account("dupont")
    _other, other_auth = await account("martin")
    created = await client.post("/v1/webhook-endpoints", json={"url": f"{receiver.url}/tw"}, headers=auth)
    assert created.status_code == 201
    endpoint_id, secret = created.json()["id"], created.json()["secret"]

    async def known() -> bool:
        return bool(
            await notifier.runtime.pool.fetchval(
                "SELECT true FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id
            )
        )

    await eventually(known, "the endpoint to reach the notifier")
    match = _match(owner, endpoint_id)
    await _publish_match(notifier, match)
    (first,) = await _received(receiver, 1, "the first call")
    assert _verified(secret, first)["data"]["match_id"] == match.match_id
    delivery = await _settled(notifier, match, "sent")

    history = await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=auth)
    assert history.status_code == 200
    body = history.json()
    assert body["endpoint"]["active"] is True
    (listed,) = body["deliveries"]
    assert (listed["id"], listed["webhook_id"], listed["type"], listed["status"]) == (
        delivery["delivery_id"],
        first.headers["webhook-id"],
        "notice.matched",
        "sent",
    )
    assert [(a["attempt"], a["outcome"], a["detail"]) for a in listed["attempts"]] == [(1, "sent", "HTTP 200")]

    replay_path = f"/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery['delivery_id']}/replay"
    assert (await client.post(replay_path, headers=other_auth)).status_code == 404
    assert (await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=other_auth)).status_code == 404
    unknown = await client.post(f"/v1/webhook-endpoints/{endpoint_id}/deliveries/d_unknown/replay", headers=auth)
    assert unknown.status_code == 404
    replayed = await client.post(replay_path, headers=auth)
    assert (replayed.status_code, replayed.json()) == (
        202,
        {"delivery_id": delivery["delivery_id"], "status": "queued"},
    )
    _first, again = await _received(receiver, 2, "the replay")
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    assert again.body == first.body
    _verified(secret, again)

    async def two_attempts() -> list[dict[str, Any]] | None:
        listing = (await client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", headers=auth)).json()
        attempts: list[dict[str, Any]] = listing["deliveries"][0]["attempts"]
        return attempts if len(attempts) == 2 and listing["deliveries"][0]["status"] == "sent" else None

    attempts = await eventually(two_attempts, "the replay in the history")
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "sent"), (2, "sent")]

    rotated = await client.post(f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", headers=auth)
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != secret and new_secret.startswith("whsec_")
    expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    assert (
        await client.post(f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", headers=other_auth)
    ).status_code == 404

    async def rotation_known() -> bool:
        return bool(
            await notifier.runtime.pool.fetchval(
                "SELECT true FROM webhook_endpoints WHERE endpoint_id = $1 AND secret = $2", endpoint_id, new_secret
            )
        )

    await eventually(rotation_known, "the rotation to reach the notifier")
    after = _match(owner, endpoint_id, title="Après la rotation")
    await _publish_match(notifier, after)
    *_, rotated_call = await _received(receiver, 3, "the call after the rotation")
    assert len(rotated_call.headers["webhook-signature"].split(" ")) == 2
    assert _verified(new_secret, rotated_call)["data"]["match_id"] == after.match_id
    assert _verified(secret, rotated_call)["data"]["match_id"] == after.match_id  # the overlap: the old one too


async def test_registration_refuses_a_host_that_resolves_to_a_private_address(settings: Settings) -> None:
    api = Api(_settings(settings, webhook_allow_private=False))
    host = socket.gethostname()  # the machine's own name: the hosts file maps it to a loopback or private address
    async with (
        api.runtime.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api.asgi()), base_url="http://api") as client,
    ):
        created = await client.post("/v1/accounts", json={"name": "dupont", "email": "dupont@example.org"})
        auth = {"authorization": f"Bearer {created.json()['api_key']}"}
        by_name = await client.post("/v1/webhook-endpoints", json={"url": f"https://{host}/in"}, headers=auth)
        literal = await client.post("/v1/webhook-endpoints", json={"url": "https://[::ffff:10.0.0.1]/"}, headers=auth)
        listed = await client.get("/v1/webhook-endpoints", headers=auth)
    assert by_name.status_code == 422
    detail = by_name.json()["detail"]
    assert detail.startswith(f"webhook url refused: {host} resolves to ") or "does not resolve" in detail
    assert literal.status_code == 422
    assert "an IPv6 form of 10.0.0.1, a private address" in literal.json()["detail"]
    assert listed.json() == []
