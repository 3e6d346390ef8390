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

import asyncpg
from starlette.applications import Starlette

from schemas import Channel, Delivery, DeliveryStatus, Match, Topic, WebhookEndpoint
from services.notifier import queue
from services.notifier.email.sender import EmailSender
from services.notifier.outcome import Outcome
from services.notifier.webhooks.dispatch import WebhookDispatch
from services.runtime import correlation
from services.runtime.metrics import record_delivery
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
        self.email = EmailSender(settings, self.runtime, delivered=self._delivered)  # its own loop sends digests
        self._webhooks = WebhookDispatch(
            settings, self.runtime, start=self._start_later, send_notice=self.email.send_notice
        )
        self.runtime.on_start(self._start_dispatcher)
        self.runtime.on_stop(self._stop_dispatcher)

    async def _on_match(self, match: Match) -> None:
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            new = await queue.record(conn, match)
        _log.info("queued deliveries", extra={"match_id": match.match_id, "new": new})

    async def _on_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self._webhooks.upsert_endpoint(endpoint)

    # --- dispatcher -------------------------------------------------------------------------------------

    async def _start_dispatcher(self) -> None:
        self._listener = await self.runtime.pool.acquire()
        await self._listener.add_listener(queue.NOTIFY_CHANNEL, self._on_notify)
        self._dispatcher = asyncio.create_task(self._dispatch_forever(), name="notifier-dispatcher")
        await self.email.start()

    async def _stop_dispatcher(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        self._webhooks.stopping()  # webhooks waiting for their endpoint go back to the queue instead of starting
        if self._tasks:  # let in-flight sends finish; their claims would expire anyway
            await asyncio.wait(self._tasks, timeout=15)
        await self.email.stop()
        if self._listener is not None:
            await self._listener.remove_listener(queue.NOTIFY_CHANNEL, self._on_notify)
            await self.runtime.pool.release(self._listener)
        await self._webhooks.aclose()

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def _dispatch_forever(self) -> None:
        while True:
            try:
                due = await queue.claim_due(self.runtime.pool, limit=_BATCH, lease=self.settings.delivery_claim_lease)
            except Exception:
                _log.exception("could not read the delivery queue; retrying")
                due = []
            # A webhook whose endpoint has its fill of requests in flight waits for one of them to end (or goes back
            # to the queue for a while) instead of holding up the loop: see webhooks/inflight.py.
            for delivery in await self._webhooks.admit(due):
                await self._spawn(delivery)
            if len(due) < _BATCH:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _IDLE_POLL_SECONDS)

    async def _spawn(self, delivery: queue.PendingDelivery) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_later(self, delivery: queue.PendingDelivery) -> None:
        """Start a delivery from outside the loop: a webhook taking the place its endpoint's last request freed."""
        task = asyncio.create_task(self._spawn(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: queue.PendingDelivery) -> None:
        # The trace of the alerts.matched message it came from, for the attempt's log lines and alerts.delivered.
        with correlation.bound(delivery.correlation_id, notice_id=delivery.match.notice.notice_id):
            await self._attempt(delivery)

    async def _attempt(self, delivery: queue.PendingDelivery) -> None:
        started = time.perf_counter()
        try:
            if delivery.channel is Channel.EMAIL:
                outcome = await self._send_email(delivery)
            else:
                outcome = await self._send_webhook(delivery)
        except Exception as exc:  # a bug must not kill the dispatcher nor lose the delivery
            _log.exception("delivery attempt crashed", extra={"delivery_id": delivery.delivery_id})
            outcome = Outcome.retry(f"internal error: {type(exc).__name__}")
        seconds = time.perf_counter() - started
        try:
            status = await queue.settle(self.runtime.pool, delivery, outcome, self.settings)
            record_delivery(SERVICE, channel=delivery.channel.value, status=status, seconds=seconds)
            if status in ("sent", "failed", "suppressed"):
                await self._publish_result(delivery, status, outcome)
            _log.info(
                "delivery attempt",
                extra={
                    "delivery_id": delivery.delivery_id,
                    "notice_id": delivery.match.notice.notice_id,
                    "channel": delivery.channel.value,
                    "attempt": delivery.attempts,
                    "status": status,
                    "detail": outcome.detail,
                },
            )
        finally:
            self._slots.release()

    async def _send_email(self, delivery: queue.PendingDelivery) -> Outcome:
        return await self.email.send_alert(
            delivery.delivery_id,
            delivery.target,
            delivery.language,
            delivery.match,
            changes=delivery.changes,
            announced_by=delivery.announced_by,
        )

    async def _send_webhook(self, delivery: queue.PendingDelivery) -> Outcome:
        return await self._webhooks.send(delivery)

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
        """/health, /ready and the internal routes the API calls for webhook delivery history and replays."""
        routes = [*self.runtime.health_routes(), *self._webhooks.routes()]
        return Starlette(routes=routes, lifespan=self.runtime.lifespan)
