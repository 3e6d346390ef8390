"""The email side of the notifier: instant alerts, daily and weekly digests, headers, suppression list, SMTP pool.

Every email carries a stable Message-ID (the match's for an instant alert, the digest's for a digest: a resend after
a crash is the same message), `Auto-Submitted`, `List-Id` (one list per account) and, when UNSUBSCRIBE_SECRET is
set, an RFC 8058 one-click `List-Unsubscribe` link that pauses the subscriptions the email was sent for. An address
the SMTP server refused for good (5xx) goes on the suppression list, and nothing more is sent to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal
from urllib.parse import quote

from schemas import Channel, Delivery, DeliveryStatus, EmailFrequency, Match
from services.notifier.changes import Change
from services.notifier.digests import DigestSchedule, previous_send_time, schedule_for
from services.notifier.email import digest_queue
from services.notifier.email.message import build_message, list_id_for, message_id_for
from services.notifier.email.render import RenderedEmail, describe_changes, digest_view, render, render_alert
from services.notifier.email.smtp import SmtpPool
from services.notifier.outcome import Outcome, OutcomeKind
from services.runtime import correlation
from services.runtime.metrics import record_delivery
from services.runtime.service import Runtime
from services.runtime.settings import Settings
from services.runtime.unsubscribe_tokens import MAX_SUBSCRIPTIONS, make_token

_log = logging.getLogger(__name__)

_DIGEST_BATCH = 20
_DIGEST_POLL_SECONDS = 15.0
_STOP_SECONDS = 15.0


class EmailSender:
    """Sends the email deliveries the dispatcher hands over, and the digests whose time has come."""

    def __init__(self, settings: Settings, runtime: Runtime, *, delivered: Any) -> None:
        self.settings = settings
        self.runtime = runtime
        self._delivered = delivered  # the alerts.delivered publisher
        self.smtp = SmtpPool(settings)
        self._digests: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        if self.settings.unsubscribe_secret is None:
            _log.warning("UNSUBSCRIBE_SECRET is not set: emails go out without a one-click unsubscribe link")
        self._digests = asyncio.create_task(self._digest_forever(), name="notifier-digests")

    async def stop(self) -> None:
        """Let the digests being sent finish (their claims would expire anyway), then close the connections."""
        self._stopping.set()
        if self._digests is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._digests), _STOP_SECONDS)
            self._digests.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._digests
        await self.smtp.close()

    # --- instant alerts ---------------------------------------------------------------------------------------

    async def send_alert(
        self,
        delivery_id: str,
        target: str,
        language: str,
        match: Match,
        *,
        changes: Sequence[Change] = (),
        announced_by: str | None = None,
    ) -> Outcome:
        """One notice to one address, now; the caller settles the delivery with the outcome.

        With `changes` the email is an update saying what changed; with `announced_by` it says that the planned
        purchase the subscriber was alerted about is now a call for tender."""
        if (suppressed := await self._suppressed(target)) is not None:
            return suppressed
        unsubscribe_url = self._unsubscribe_url([match], target)
        rendered = render_alert(
            match,
            language=_language(language),
            recipient_email=target,
            base_url=self.settings.public_base_url,
            unsubscribe_url=unsubscribe_url,
            changes=describe_changes(changes, _language(language)),
            became_competition=announced_by is not None,
        )
        message = self._message(
            rendered, target, match.subscriber_id, key=match.match_id, unsubscribe_url=unsubscribe_url
        )
        return await self._send(message, target, delivery_id)

    # --- digests ----------------------------------------------------------------------------------------------

    async def run_digests(self, now: datetime | None = None) -> int:
        """Send every digest due at `now` (default: the current time), one email each; returns how many were tried.

        Tests pass a `now` past a period's send time instead of waiting for it.
        """
        moment = now or datetime.now(UTC)
        tried = 0
        while not self._stopping.is_set():
            due = await digest_queue.claim_due(
                self.runtime.pool, now=moment, limit=_DIGEST_BATCH, lease=self.settings.delivery_claim_lease
            )
            await asyncio.gather(*(self._send_digest(digest, moment) for digest in due))
            tried += len(due)
            if len(due) < _DIGEST_BATCH:
                break
        return tried

    async def _digest_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_digests()
            except Exception:
                _log.exception("could not send the due digests; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), _DIGEST_POLL_SECONDS)

    async def _send_digest(self, digest: digest_queue.PendingDigest, now: datetime) -> None:
        started = time.perf_counter()
        try:
            outcome = await self._digest_outcome(digest)
        except Exception as exc:  # a bug must not lose the digest: it is retried like a transient failure
            _log.exception("digest attempt crashed", extra={"digest_id": digest.digest_id})
            outcome = Outcome.retry(f"internal error: {type(exc).__name__}")
        seconds = time.perf_counter() - started
        delays = self.settings.smtp_retry_schedule[1:]
        status = await digest_queue.settle(self.runtime.pool, digest, outcome, retry_delays=delays, now=now)
        record_delivery(self.runtime.service, channel=Channel.EMAIL.value, status=status, seconds=seconds)
        _log.info(
            "digest attempt",
            extra={
                "digest_id": digest.digest_id,
                "notices": len(digest.deliveries),
                "attempt": digest.attempts,
                "status": status,
                "detail": outcome.detail,
            },
        )
        if status in ("sent", "failed", "suppressed"):
            for item in digest.deliveries:
                with correlation.bound(item.correlation_id, notice_id=item.match.notice.notice_id):
                    await self._publish(item.delivery_id, item.match, digest.target, status, digest.attempts, outcome)

    async def _digest_outcome(self, digest: digest_queue.PendingDigest) -> Outcome:
        if not digest.deliveries:
            return Outcome.suppressed("nothing left to send in this digest")  # and so no email
        if (suppressed := await self._suppressed(digest.target)) is not None:
            return suppressed
        matches = _latest_versions([d.match for d in digest.deliveries])
        schedule = _digest_schedule(matches, digest.target)
        unsubscribe_url = self._unsubscribe_url(matches, digest.target)
        # Up to DIGEST_MAX_NOTICES cards: rendered off the event loop, which keeps serving Kafka and the other sends.
        rendered = await asyncio.to_thread(self._render_digest, digest, matches, schedule, unsubscribe_url)
        message = self._message(
            rendered, digest.target, digest.subscriber_id, key=digest.digest_id, unsubscribe_url=unsubscribe_url
        )
        return await self._send(message, digest.target, digest.digest_id)

    def _render_digest(
        self,
        digest: digest_queue.PendingDigest,
        matches: Sequence[Match],
        schedule: DigestSchedule,
        unsubscribe_url: str | None,
    ) -> RenderedEmail:
        view = digest_view(
            matches,
            language=_language(digest.language),
            recipient_email=digest.target,
            base_url=self.settings.public_base_url,
            frequency=schedule.frequency,
            period_start=previous_send_time(schedule, digest.digest_at),
            period_end=digest.digest_at,
            timezone=schedule.timezone,
            cap=self.settings.digest_max_notices,
            unsubscribe_url=unsubscribe_url,
            updates=_digest_updates(digest),
        )
        return render(view)

    # --- shared -----------------------------------------------------------------------------------------------

    def _message(
        self, rendered: RenderedEmail, target: str, subscriber_id: str, *, key: str, unsubscribe_url: str | None
    ) -> EmailMessage:
        domain = self.settings.message_id_domain
        return build_message(
            rendered,
            sender=self.settings.mail_from,
            recipient=target,
            message_id=message_id_for(key, target, domain),
            unsubscribe_url=unsubscribe_url,
            list_id=list_id_for(subscriber_id, self.settings.list_id_domain or domain),
        )

    def _unsubscribe_url(self, matches: Sequence[Match], email: str) -> str | None:
        """The one-click link that pauses the subscriptions of `matches` emailing this address (none without a
        secret)."""
        secret = self.settings.unsubscribe_secret
        subscription_ids = _subscription_ids(matches, email)
        if secret is None or not subscription_ids:
            return None
        token = make_token(secret.get_secret_value(), subscription_ids[:MAX_SUBSCRIPTIONS], email)
        return f"{self.settings.public_base_url.rstrip('/')}/v1/unsubscribe/{quote(token, safe='')}"

    async def send_notice(self, message: EmailMessage, target: str, key: str) -> Outcome:
        """A service email that is not an alert (a webhook endpoint disabled...) by the rules alerts follow: never to
        an address on the suppression list, and an address the server refuses for good goes on it."""
        if (suppressed := await self._suppressed(target)) is not None:
            return suppressed
        return await self._send(message, target, key)

    async def _suppressed(self, target: str) -> Outcome | None:
        reason = await digest_queue.suppression(self.runtime.pool, target)
        return None if reason is None else Outcome.suppressed(f"{target} is on the suppression list: {reason}")

    async def _send(self, message: EmailMessage, target: str, key: str) -> Outcome:
        outcome = await self.smtp.send(message)
        if outcome.kind is OutcomeKind.SUPPRESSED:  # the server refused the address for good
            await digest_queue.suppress(self.runtime.pool, target, outcome.detail)
            _log.warning("address suppressed", extra={"key": key, "detail": outcome.detail})
        return outcome

    async def _publish(
        self, delivery_id: str, match: Match, target: str, status: str, attempts: int, outcome: Outcome
    ) -> None:
        event = Delivery(
            delivery_id=delivery_id,
            match_id=match.match_id,
            subscriber_id=match.subscriber_id,
            notice_id=match.notice.notice_id,
            channel=Channel.EMAIL,
            target=target,
            status=DeliveryStatus(status),
            attempts=attempts,
            detail=outcome.detail or None,
            at=datetime.now(UTC),
        )
        await self._delivered.publish(event, key=event.subscriber_id.encode())


def _language(value: str) -> Literal["fr", "en"]:
    return "en" if value == "en" else "fr"


def _digest_updates(digest: digest_queue.PendingDigest) -> dict[str, tuple[Sequence[Change], bool]]:
    """What changed, by match id, for the notices of the digest whose earlier version the address was sent in an
    earlier email; a notice whose versions are all in this digest is new to the reader."""
    versions: dict[str, int] = {}
    for delivery in digest.deliveries:
        versions[delivery.match.notice.notice_id] = versions.get(delivery.match.notice.notice_id, 0) + 1
    return {
        d.match.match_id: (d.changes if versions[d.match.notice.notice_id] == 1 else (), d.announced_by is not None)
        for d in digest.deliveries
        if d.changes or d.announced_by
    }


def _subscription_ids(matches: Sequence[Match], email: str) -> list[str]:
    """The subscriptions an email was sent for: the ones of its matches that email this address."""
    wanted = email.strip().lower()
    return sorted(
        {
            s.subscription_id
            for match in matches
            for s in match.subscriptions
            if s.email is not None and s.email.strip().lower() == wanted
        }
    )


def _latest_versions(matches: Sequence[Match]) -> list[Match]:
    """One match per notice: two versions of a notice recorded in one period are shown once, as the latest."""
    latest: dict[str, Match] = {}
    for match in matches:
        kept = latest.get(match.notice.notice_id)
        if kept is None or match.matched_at >= kept.matched_at:
            latest[match.notice.notice_id] = match
    return list(latest.values())


def _digest_schedule(matches: Sequence[Match], email: str) -> DigestSchedule:
    """The schedule the digest was held for, as the most recent match says it."""
    newest = max(matches, key=lambda m: m.matched_at)
    schedule = schedule_for(newest.subscriptions, email)
    if schedule is None:  # cannot happen for a held delivery; a daily digest in Paris time is the safe reading
        return DigestSchedule(EmailFrequency.DAILY)
    return schedule
