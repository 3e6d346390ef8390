"""The webhook side of the notifier's dispatcher: per-endpoint limits, sending, and disabling failing endpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage

import asyncpg
from starlette.routing import Route

from schemas import Channel, WebhookEndpoint
from services.notifier import queue
from services.notifier.outcome import Outcome, OutcomeKind
from services.notifier.webhooks import endpoints
from services.notifier.webhooks.deliver import WebhookSender
from services.notifier.webhooks.history import internal_routes
from services.notifier.webhooks.inflight import Admission, EndpointInFlight
from services.notifier.webhooks.notice import disabled_notice
from services.notifier.webhooks.payload import webhook_body, webhook_message_id
from services.runtime.service import Runtime
from services.runtime.settings import Settings
from services.runtime.ssrf import Resolver, system_resolver

_log = logging.getLogger(__name__)

_MAX_WAITING_PER_ENDPOINT = 1000
_MAX_WAITING_IN_ALL = 2000
# When every delivery of a claimed batch went back to the queue, the claim loop pauses this long rather than spin
# through the busy endpoints' backlog: nothing else was due before them.
_ALL_HANDED_BACK_PAUSE_SECONDS = 0.1


class WebhookDispatch:
    """Built without I/O; `aclose()` hands waiting deliveries back and closes the connections.

    `start` is how the dispatcher starts a delivery outside its loop: when a request ends, the next delivery of the
    same endpoint takes its place at once, before the ended one is even recorded.
    """

    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        *,
        start: Callable[[queue.PendingDelivery], None],
        send_notice: Callable[[EmailMessage, str, str], Awaitable[Outcome]],
        resolver: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        self._runtime = runtime
        self._start = start
        self._send_notice = send_notice  # the email side's: suppression list included
        self._sender = WebhookSender(
            timeout=settings.webhook_timeout,
            max_response_bytes=settings.webhook_max_response_bytes,
            allow_private=settings.webhook_allow_private,
            max_retry_after=max(settings.webhook_retry_schedule),
            resolver=resolver,
        )
        self._in_flight: EndpointInFlight[queue.PendingDelivery] = EndpointInFlight(
            limit=settings.webhook_max_in_flight_per_endpoint,
            max_waiting=_MAX_WAITING_PER_ENDPOINT,
            max_waiting_in_all=_MAX_WAITING_IN_ALL,
            # A claimed delivery waits in memory for at most half its claim's lease (DELIVERY_CLAIM_LEASE).
            max_wait=settings.delivery_claim_lease.total_seconds() / 2,
        )
        self._started_at: dict[str, float] = {}  # delivery id -> when its request started (monotonic)
        self._telling: set[str] = set()  # endpoints whose owner is being emailed now
        self._stopping = False

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._runtime.pool

    def routes(self) -> list[Route]:
        return internal_routes(lambda: self._runtime.pool)

    async def upsert_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await endpoints.upsert(self._pool, endpoint)

    # --- per-endpoint limit ---------------------------------------------------------------------------

    async def admit(self, due: list[queue.PendingDelivery]) -> list[queue.PendingDelivery]:
        """What of `due` to send now: every email, and each webhook whose endpoint has room in flight. The other
        webhooks wait for a request of their endpoint to end, or go back to the durable queue for a while."""
        start: list[queue.PendingDelivery] = []
        hand_back = [(stale, 0.0) for stale in self._in_flight.sweep()]
        for delivery in due:
            if delivery.channel is not Channel.WEBHOOK:
                start.append(delivery)
                continue
            admission = self._in_flight.admit(delivery.target, delivery)
            if admission is Admission.START:
                self._started_at[delivery.delivery_id] = time.monotonic()
                start.append(delivery)
            elif admission is Admission.HAND_BACK:
                hand_back.append((delivery, self._in_flight.hand_back_delay(delivery.target)))
        await self._hand_back(hand_back)
        if due and len(hand_back) >= len(due):
            await asyncio.sleep(_ALL_HANDED_BACK_PAUSE_SECONDS)
        return start

    async def _finished(self, delivery: queue.PendingDelivery) -> None:
        """A request ended (or was not made): the endpoint's next delivery, if any, takes its place."""
        started = self._started_at.pop(delivery.delivery_id, time.monotonic())
        handoff = self._in_flight.finish(delivery.target, time.monotonic() - started)
        hand_back = [(stale, 0.0) for stale in handoff.hand_back]
        successor = handoff.start
        if successor is not None and self._stopping:
            self._in_flight.finish(successor.target, 0.0)
            hand_back.append((successor, 0.0))
            successor = None
        if successor is not None:
            self._started_at[successor.delivery_id] = time.monotonic()
            self._start(successor)
        await self._hand_back(hand_back)

    def stopping(self) -> None:
        """No waiting delivery starts any more; they go back to the durable queue on `aclose`."""
        self._stopping = True

    async def aclose(self) -> None:
        self._stopping = True
        await self._hand_back([(waiting, 0.0) for waiting in self._in_flight.drain()])
        await self._sender.aclose()

    async def _hand_back(self, deliveries: list[tuple[queue.PendingDelivery, float]]) -> None:
        """Undo claims that were not attempted: each delivery is due again after its delay, its attempt unused."""
        if not deliveries:
            return
        try:
            await self._pool.execute(
                """UPDATE deliveries d SET status = CASE WHEN d.attempts > 1 THEN 'retrying' ELSE 'pending' END,
                          attempts = d.attempts - 1, locked_until = NULL,
                          next_attempt_at = now() + make_interval(secs => h.delay)
                   FROM unnest($1::text[], $2::int[], $3::float8[]) AS h(delivery_id, attempts, delay)
                   WHERE d.delivery_id = h.delivery_id AND d.attempts = h.attempts AND d.status = 'sending'""",
                [d.delivery_id for d, _delay in deliveries],
                [d.attempts for d, _delay in deliveries],
                [delay for _d, delay in deliveries],
            )
        except Exception:  # their claims then simply expire and they are claimed again
            _log.exception("could not hand webhook deliveries back", extra={"deliveries": len(deliveries)})

    # --- one attempt ----------------------------------------------------------------------------------

    async def send(self, delivery: queue.PendingDelivery) -> Outcome:
        """One attempt of an admitted delivery; its place in flight goes to the next one as soon as it is over."""
        try:
            outcome, called = await self._attempt(delivery)
        finally:
            await asyncio.shield(self._finished(delivery))
        return await self._judge(delivery, outcome) if called else outcome

    async def _attempt(self, delivery: queue.PendingDelivery) -> tuple[Outcome, bool]:
        """The outcome, and whether the endpoint was called (rather than refused before calling)."""
        endpoint = await endpoints.load(self._pool, delivery.target)
        if endpoint is None:
            # The endpoint's event may not have arrived yet: wait for it on the retry schedule.
            return Outcome.retry(f"webhook endpoint {delivery.target} is not known yet"), False
        if endpoint.subscriber_id != delivery.match.subscriber_id:
            return Outcome.failed("the webhook endpoint belongs to another account"), False
        if not endpoint.active:
            await self._tell_owner(endpoint)  # in case telling them failed when it was disabled
            reason = endpoint.disabled_reason or "by its owner"
            return Outcome.suppressed(f"the webhook endpoint is disabled: {reason}"), False
        outcome = await self._sender.send(
            endpoint.url,
            secret=endpoint.secret,
            previous_secret=endpoint.previous_secret_at(datetime.now(UTC)),
            message_id=webhook_message_id(delivery.match.match_id, delivery.target),
            body=webhook_body(
                delivery.match,
                endpoint_id=delivery.target,
                changes=delivery.changes,
                announced_by=delivery.announced_by,
            ),
        )
        return outcome, True

    async def _judge(self, delivery: queue.PendingDelivery, outcome: Outcome) -> Outcome:
        """After a call: success clears the failure clock; a 410, or failing for WEBHOOK_DISABLE_AFTER, disables."""
        if outcome.kind is OutcomeKind.SENT:
            await endpoints.record_success(self._pool, delivery.target)
            return outcome
        if outcome.kind is OutcomeKind.SUPPRESSED:  # 410 Gone
            await self._disable(delivery.target, outcome.detail)
            return outcome
        since = await endpoints.record_failure(
            self._pool, delivery.target, disable_after=self.settings.webhook_disable_after
        )
        if since is None:
            return outcome
        reason = f"every call failed since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC; last: {outcome.detail}"
        await self._disable(delivery.target, reason)
        return Outcome.suppressed(f"the webhook endpoint is now disabled: {reason}")

    async def _disable(self, endpoint_id: str, reason: str) -> None:
        disabled = await endpoints.disable(self._pool, endpoint_id, reason)
        if disabled is not None:
            _log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint_id, "reason": reason})
            await self._tell_owner(disabled)

    async def _tell_owner(self, endpoint: endpoints.Endpoint) -> None:
        """Email the owner that the endpoint was disabled, once: tried again on its next suppressed delivery, unless
        the address is on the suppression list (then nobody can be told, and the notice is settled as it is)."""
        if endpoint.owner_email is None or endpoint.disabled_at is None or endpoint.owner_notified_at is not None:
            return
        if endpoint.endpoint_id in self._telling:  # its other deliveries, suppressed at the same moment
            return
        message = disabled_notice(
            endpoint,
            sender=self.settings.mail_from,
            message_id_domain=self.settings.message_id_domain,
            api_base_url=self.settings.public_base_url,
        )
        self._telling.add(endpoint.endpoint_id)
        try:
            outcome = await self._send_notice(message, endpoint.owner_email, f"webhook-disabled.{endpoint.endpoint_id}")
        finally:
            self._telling.discard(endpoint.endpoint_id)
        if outcome.kind in (OutcomeKind.SENT, OutcomeKind.SUPPRESSED):
            await endpoints.mark_owner_notified(self._pool, endpoint.endpoint_id, endpoint.disabled_at)
        if outcome.kind is not OutcomeKind.SENT:
            _log.warning(
                "could not tell the owner their webhook endpoint was disabled",
                extra={"endpoint_id": endpoint.endpoint_id, "detail": outcome.detail},
            )
