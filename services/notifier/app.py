"""Notifier: `alerts.matched` in; emails and signed webhooks out; `alerts.delivered` records each result.

A match is first recorded in the durable delivery queue (idempotent: one row per subscriber, notice version,
channel and target), then its offset is committed. A dispatcher sends what is due, each delivery in its own
task, so a slow endpoint never holds up the others; transient failures are retried on a schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Literal

import asyncpg
import httpx
from starlette.applications import Starlette

from schemas import Channel, Delivery, DeliveryStatus, Match, Topic, WebhookEndpoint
from services.notifier import queue
from services.notifier.email.message import build_message, message_id_for
from services.notifier.email.render import render_alert
from services.notifier.email.smtp import send_email
from services.notifier.outcome import Outcome, OutcomeKind
from services.notifier.webhooks.deliver import send_webhook
from services.notifier.webhooks.payload import webhook_body, webhook_message_id
from services.runtime.service import Runtime
from services.runtime.settings import Settings

_log = logging.getLogger(__name__)

SERVICE = "notifier"
_BATCH = 50
_CONCURRENCY = 32
_IDLE_POLL_SECONDS = 2.0


class Notifier:
    def __init__(self, settings: Settings) -> None:
        self.runtime = Runtime(settings, service=SERVICE, migrations="services.notifier")
        self.settings = settings
        self._delivered = self.runtime.publisher(
            Topic.ALERTS_DELIVERED,
            schema=Delivery,
            description="The final result of each delivery, keyed by subscriber_id",
        )
        self.runtime.consume(Topic.ALERTS_MATCHED, self._on_match)
        self.runtime.consume(Topic.WEBHOOK_ENDPOINTS_CHANGES, self._on_endpoint, group_suffix="-endpoints")
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(_CONCURRENCY)
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._http: httpx.AsyncClient | None = None
        self.runtime.on_start(self._start_dispatcher)
        self.runtime.on_stop(self._stop_dispatcher)

    async def _on_match(self, match: Match) -> None:
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            new = await queue.record(conn, match)
        _log.info("queued deliveries", extra={"match_id": match.match_id, "new": new})

    async def _on_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self.runtime.pool.execute(
            """INSERT INTO webhook_endpoints (endpoint_id, subscriber_id, url, secret, active, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (endpoint_id) DO UPDATE SET url = $3, secret = $4, active = $5, updated_at = $6,
                   disabled_reason = NULL
               WHERE webhook_endpoints.updated_at <= $6""",
            endpoint.endpoint_id, endpoint.subscriber_id, endpoint.url, endpoint.secret, endpoint.active,
            endpoint.updated_at,
        )  # fmt: skip

    # --- dispatcher -------------------------------------------------------------------------------------

    async def _start_dispatcher(self) -> None:
        self._http = httpx.AsyncClient(
            follow_redirects=False, timeout=httpx.Timeout(self.settings.webhook_timeout), trust_env=False
        )
        self._listener = await self.runtime.pool.acquire()
        await self._listener.add_listener(queue.NOTIFY_CHANNEL, self._on_notify)
        self._dispatcher = asyncio.create_task(self._dispatch_forever(), name="notifier-dispatcher")

    async def _stop_dispatcher(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        if self._tasks:  # let in-flight sends finish; their claims would expire anyway
            await asyncio.wait(self._tasks, timeout=15)
        if self._listener is not None:
            await self._listener.remove_listener(queue.NOTIFY_CHANNEL, self._on_notify)
            await self.runtime.pool.release(self._listener)
        if self._http is not None:
            await self._http.aclose()

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _dispatch_forever(self) -> None:
        while True:
            try:
                due = await queue.claim_due(self.runtime.pool, limit=_BATCH)
            except Exception:
                _log.exception("could not read the delivery queue; retrying")
                due = []
            for delivery in due:
                await self._slots.acquire()
                task = asyncio.create_task(self._deliver(delivery))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(due) < _BATCH:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _IDLE_POLL_SECONDS)

    async def _deliver(self, delivery: queue.PendingDelivery) -> None:
        try:
            if delivery.channel is Channel.EMAIL:
                outcome = await self._send_email(delivery)
            else:
                outcome = await self._send_webhook(delivery)
        except Exception as exc:  # a bug must not kill the dispatcher nor lose the delivery
            _log.exception("delivery attempt crashed", extra={"delivery_id": delivery.delivery_id})
            outcome = Outcome.retry(f"internal error: {type(exc).__name__}")
        try:
            status = await queue.settle(self.runtime.pool, delivery, outcome)
            if status in ("sent", "failed", "suppressed"):
                await self._publish_result(delivery, status, outcome)
            _log.info(
                "delivery attempt",
                extra={
                    "delivery_id": delivery.delivery_id,
                    "channel": delivery.channel.value,
                    "attempt": delivery.attempts,
                    "status": status,
                    "detail": outcome.detail,
                },
            )
        finally:
            self._slots.release()

    async def _send_email(self, delivery: queue.PendingDelivery) -> Outcome:
        match = delivery.match
        language: Literal["fr", "en"] = "en" if delivery.language == "en" else "fr"
        rendered = render_alert(
            match, language=language, recipient_email=delivery.target, base_url=self.settings.public_base_url
        )
        message = build_message(
            rendered,
            sender=self.settings.mail_from,
            recipient=delivery.target,
            message_id=message_id_for(match.match_id, delivery.target, self.settings.message_id_domain),
            unsubscribe_url=None,
        )
        return await send_email(message, self.settings)

    async def _send_webhook(self, delivery: queue.PendingDelivery) -> Outcome:
        assert self._http is not None
        row = await self.runtime.pool.fetchrow(
            "SELECT url, secret, active, subscriber_id FROM webhook_endpoints WHERE endpoint_id = $1",
            delivery.target,
        )
        if row is None:
            # The endpoint's event may not have arrived yet: wait for it on the retry schedule.
            return Outcome.retry(f"webhook endpoint {delivery.target} is not known yet")
        if row["subscriber_id"] != delivery.match.subscriber_id:
            return Outcome.failed("the webhook endpoint belongs to another account")
        if not row["active"]:
            return Outcome.suppressed("the webhook endpoint is disabled")
        outcome = await send_webhook(
            self._http,
            url=row["url"],
            secret=row["secret"],
            message_id=webhook_message_id(delivery.match.match_id, delivery.target),
            timestamp=int(time.time()),
            body=webhook_body(delivery.match, endpoint_id=delivery.target),
            allow_private=self.settings.webhook_allow_private,
        )
        if outcome.kind is OutcomeKind.SUPPRESSED:
            await self.runtime.pool.execute(
                "UPDATE webhook_endpoints SET active = false, disabled_reason = $2 WHERE endpoint_id = $1",
                delivery.target,
                outcome.detail,
            )
        return outcome

    async def _publish_result(self, delivery: queue.PendingDelivery, status: str, outcome: Outcome) -> None:
        event = Delivery(
            delivery_id=delivery.delivery_id,
            match_id=delivery.match.match_id,
            subscriber_id=delivery.match.subscriber_id,
            notice_id=delivery.match.notice.notice_id,
            channel=delivery.channel,
            target=delivery.target,
            status=DeliveryStatus(status),
            attempts=delivery.attempts,
            detail=outcome.detail or None,
            at=datetime.now(UTC),
        )
        await self._delivered.publish(event, key=event.subscriber_id.encode())

    def asgi(self) -> Starlette:
        return self.runtime.asgi()
