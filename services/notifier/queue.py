"""The durable delivery queue in PostgreSQL: record once, claim when due, settle each attempt."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from schemas import Channel, Match, NoticeKind, NoticeSummary
from services.notifier import digests
from services.notifier.changes import Change, announced_by, changes_from_json, changes_to_json, what_changed
from services.notifier.email import digest_queue
from services.notifier.outcome import Outcome
from services.runtime import correlation
from services.runtime.settings import Settings, get_settings

NOTIFY_CHANNEL = "tenderwatch_deliveries"


@dataclass(frozen=True)
class PendingDelivery:
    delivery_id: str
    channel: Channel
    target: str
    language: str
    match: Match
    attempts: int  # including the one now being made
    changes: tuple[Change, ...] = ()  # since the version of this notice the target was sent: an update
    announced_by: str | None = None  # the planned purchase, already sent to the target, this call for tender follows
    correlation_id: str | None = None  # of the alerts.matched message it came from (None: recorded before it was)


def delivery_id_for(subscriber_id: str, notice_id: str, version: str, channel: Channel, target: str) -> str:
    key = "\x1f".join((subscriber_id, notice_id, version, channel.value, target))
    return "d_" + hashlib.sha256(key.encode()).hexdigest()[:32]


async def record(conn: asyncpg.Connection, match: Match) -> int:
    """Queue one delivery per distinct target of the match; returns how many are new and to be sent.

    A notice whose procedure (`duplicate_group`) already reached a target through another notice of the same kind
    is recorded as suppressed, so a subscriber hears of a procedure once even when several sources publish it. The
    kind matters: the prior information, the call for tender and the award of one procedure share its group, and
    each is news. An address whose subscriptions ask for a daily or weekly digest gets its delivery held in the
    digest of the period the match falls in (the most urgent frequency wins when several subscriptions email it).
    """
    targets: dict[tuple[Channel, str], str] = {}
    for sub in match.subscriptions:
        if sub.email:
            targets.setdefault((Channel.EMAIL, sub.email.lower()), sub.language)
        if sub.webhook_endpoint_id:
            targets.setdefault((Channel.WEBHOOK, sub.webhook_endpoint_id), sub.language)
    payload = match.model_dump_json()
    group = match.notice.duplicate_group
    new = 0
    notice = match.notice
    for (channel, target), language in targets.items():
        delivery_id = delivery_id_for(match.subscriber_id, notice.notice_id, notice.version, channel, target)
        # The same procedure already reached this target through another source's notice: record, do not send.
        already = group and await conn.fetchval(
            """SELECT notice_id FROM deliveries WHERE subscriber_id = $1 AND channel = $2 AND target = $3
               AND duplicate_group = $4 AND notice_id <> $5 AND match->'notice'->>'kind' = $6 LIMIT 1""",
            match.subscriber_id, channel.value, target, group, notice.notice_id, notice.kind.value,
        )  # fmt: skip
        suppressed = f"same procedure as {already}, already delivered" if already else None
        changes, earlier_version, announced = await _change_alert(conn, match, channel, target)
        if earlier_version is not None and not changes and suppressed is None:
            suppressed = f"nothing a subscriber sees changed since version {earlier_version}, already delivered"
        # A daily or weekly email waits ('held') in its period's digest until the period's send time.
        schedule = digests.schedule_for(match.subscriptions, target) if channel is Channel.EMAIL else None
        digest_at = digests.next_send_time(schedule, match.matched_at) if schedule is not None else None
        inserted = await conn.fetchval(
            """INSERT INTO deliveries (delivery_id, subscriber_id, match_id, notice_id, notice_version, channel,
                                       target, language, match, status, duplicate_group, last_error, digest_at,
                                       next_attempt_at, changes, announced_by, correlation_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, coalesce($13, now()),
                       $14::jsonb, $15, $16)
               ON CONFLICT DO NOTHING RETURNING true""",
            delivery_id, match.subscriber_id, match.match_id, match.notice.notice_id, match.notice.version,
            channel.value, target, language, payload,
            "suppressed" if suppressed else "held" if digest_at is not None else "pending", group, suppressed,
            digest_at, changes_to_json(changes), announced, correlation.current_correlation_id(),
        )  # fmt: skip
        if inserted and not suppressed and digest_at is not None:
            await digest_queue.hold(
                conn, delivery_id=delivery_id, subscriber_id=match.subscriber_id, target=target,
                digest_at=digest_at, language=language,
            )  # fmt: skip
        new += bool(inserted and not suppressed)
    if new:
        await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    return new


async def claim_due(pool: asyncpg.Pool, *, limit: int, lease: timedelta | None = None) -> list[PendingDelivery]:
    """Take up to `limit` due deliveries for this instance; a crashed instance's claims expire after `lease`
    (DELIVERY_CLAIM_LEASE unless given)."""
    rows = await pool.fetch(
        """UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, locked_until = now() + $2::interval
           WHERE d.delivery_id IN (
               SELECT delivery_id FROM deliveries
               WHERE (status IN ('pending', 'retrying') AND next_attempt_at <= now())
                  OR (status = 'sending' AND locked_until < now())
               ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING delivery_id, channel, target, language, match::text AS match, attempts, changes::text AS changes,
                     announced_by, correlation_id""",
        limit,
        lease or get_settings().delivery_claim_lease,
    )
    return [
        PendingDelivery(
            delivery_id=r["delivery_id"],
            channel=Channel(r["channel"]),
            target=r["target"],
            language=r["language"],
            match=Match.model_validate_json(r["match"]),
            attempts=r["attempts"],
            changes=changes_from_json(r["changes"]),
            announced_by=r["announced_by"],
            correlation_id=r["correlation_id"],
        )
        for r in rows
    ]


# How many of a target's planned purchases a call for tender is compared with.
_PLANS_COMPARED = 200


async def _change_alert(
    conn: asyncpg.Connection, match: Match, channel: Channel, target: str
) -> tuple[list[Change], str | None, str | None]:
    """(what changed, the earlier version the target was sent, the planned purchase the notice follows).

    An earlier version of the same notice makes this delivery an update that says what changed (no change a
    subscriber would see: the caller suppresses it). Otherwise a call for tender is checked against the planned
    purchases the target was alerted about.
    """
    notice = match.notice
    earlier = await conn.fetchrow(
        """SELECT notice_version, match->'notice' AS notice FROM deliveries
           WHERE subscriber_id = $1 AND channel = $2 AND target = $3 AND notice_id = $4 AND notice_version <> $5
             AND status <> 'failed'
           ORDER BY created_at DESC LIMIT 1""",
        match.subscriber_id, channel.value, target, notice.notice_id, notice.version,
    )  # fmt: skip
    if earlier is not None:
        before = NoticeSummary.model_validate_json(earlier["notice"])
        return what_changed(before, notice), earlier["notice_version"], None
    if notice.kind is not NoticeKind.COMPETITION:
        return [], None, None
    plans = await conn.fetch(
        """SELECT match->'notice' AS notice FROM deliveries
           WHERE subscriber_id = $1 AND channel = $2 AND target = $3 AND match->'notice'->>'kind' = 'planning'
             AND status <> 'failed'
           ORDER BY created_at DESC LIMIT $4""",
        match.subscriber_id, channel.value, target, _PLANS_COMPARED,
    )  # fmt: skip
    for row in plans:
        plan = NoticeSummary.model_validate_json(row["notice"])
        if announced_by(plan, notice):
            return [], None, plan.notice_id
    return [], None, None


def retry_delays(channel: Channel, settings: Settings) -> tuple[timedelta, ...]:
    """The wait after each failed attempt: entry k follows attempt k+1; past the last, the delivery fails.

    Webhooks follow WEBHOOK_RETRY_SCHEDULE and emails SMTP_RETRY_SCHEDULE (parsed once, with the settings), whose
    first entry is attempt 1's own 0 s.
    """
    if channel is Channel.WEBHOOK:
        return settings.webhook_retry_schedule[1:]
    return settings.smtp_retry_schedule[1:]


async def settle(
    pool: asyncpg.Pool, delivery: PendingDelivery, outcome: Outcome, settings: Settings | None = None
) -> str:
    """Record an attempt's outcome; returns the delivery's new status.

    A retry waits the schedule's delay, or the outcome's `retry_after` when that is longer.
    """
    schedule = retry_delays(delivery.channel, settings or get_settings())
    status, delay = outcome.next_status(delivery.attempts, schedule)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """UPDATE deliveries SET status = $2, next_attempt_at = now() + $3::interval, locked_until = NULL,
                      last_error = CASE WHEN $2 = 'sent' THEN NULL ELSE $4 END,
                      sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
               WHERE delivery_id = $1""",
            delivery.delivery_id,
            status,
            delay,
            outcome.detail,
        )
        await conn.execute(
            """INSERT INTO delivery_attempts (delivery_id, attempt, outcome, detail) VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING""",
            delivery.delivery_id,
            delivery.attempts,
            outcome.kind.value,
            outcome.detail[:2000],
        )
    return status
