"""The digest side of the delivery queue, and the suppression list (migration 004).

A digest is one email per subscriber, address and period. Deliveries wait in their open digest ('held'); at the
period's send time the digest is claimed with FOR UPDATE SKIP LOCKED and a lease, like single deliveries, sent once,
and settled together with all its deliveries. The digest id is chosen when the digest opens and never changes, so a
retry, or a resend after a crash between sending and recording, carries the same Message-ID.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from schemas import Match
from services.notifier.changes import Change, changes_from_json
from services.notifier.outcome import Outcome
from services.runtime.settings import get_settings


@dataclass(frozen=True)
class DigestDelivery:
    delivery_id: str
    match: Match
    changes: tuple[Change, ...] = ()  # since the version the address was sent (see queue.record)
    announced_by: str | None = None
    correlation_id: str | None = None  # see queue.PendingDelivery


@dataclass(frozen=True)
class PendingDigest:
    digest_id: str
    subscriber_id: str
    target: str
    digest_at: datetime
    language: str
    attempts: int  # including the one now being made
    deliveries: tuple[DigestDelivery, ...]


async def hold(
    conn: asyncpg.Connection, *, delivery_id: str, subscriber_id: str, target: str, digest_at: datetime, language: str
) -> str:
    """Put a just-recorded delivery in the open digest of its period (opening one if needed); returns its id.

    Call it in the transaction that inserted the delivery. The upsert locks the open digest row until that
    transaction ends, so a digest is never claimed while a delivery is being added to it.
    """
    digest_id: str = await conn.fetchval(
        """INSERT INTO email_digests (digest_id, subscriber_id, target, digest_at, language, status, notices,
                                      next_attempt_at)
           VALUES ($1, $2, $3, $4, $5, 'held', 1, $4)
           ON CONFLICT (subscriber_id, target, digest_at) WHERE status = 'held'
           DO UPDATE SET notices = email_digests.notices + 1
           RETURNING digest_id""",
        "g_" + secrets.token_hex(16), subscriber_id, target, digest_at, language,
    )  # fmt: skip
    await conn.execute("UPDATE deliveries SET digest_id = $2 WHERE delivery_id = $1", delivery_id, digest_id)
    return digest_id


async def claim_due(
    pool: asyncpg.Pool, *, now: datetime, limit: int, lease: timedelta | None = None
) -> list[PendingDigest]:
    """Take up to `limit` digests whose send time (or retry time) has come; a crashed instance's claims expire after
    `lease` (DELIVERY_CLAIM_LEASE unless given)."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """UPDATE email_digests d
               SET status = 'sending', attempts = d.attempts + 1, locked_until = $2 + $3::interval
               WHERE d.digest_id IN (
                   SELECT digest_id FROM email_digests
                   WHERE (status IN ('held', 'retrying') AND next_attempt_at <= $2)
                      OR (status = 'sending' AND locked_until < $2)
                   ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
               RETURNING digest_id, subscriber_id, target, digest_at, language, attempts""",
            limit, now, lease or get_settings().delivery_claim_lease,
        )  # fmt: skip
        if not rows:
            return []
        items = await conn.fetch(
            """SELECT digest_id, delivery_id, match::text AS match, changes::text AS changes, announced_by,
                      correlation_id
               FROM deliveries
               WHERE digest_id = ANY($1::text[]) AND status = 'held' ORDER BY delivery_id""",
            [r["digest_id"] for r in rows],
        )
    by_digest: dict[str, list[DigestDelivery]] = {}
    for item in items:
        by_digest.setdefault(item["digest_id"], []).append(
            DigestDelivery(
                item["delivery_id"],
                Match.model_validate_json(item["match"]),
                changes_from_json(item["changes"]),
                item["announced_by"],
                item["correlation_id"],
            )
        )
    return [
        PendingDigest(
            digest_id=r["digest_id"],
            subscriber_id=r["subscriber_id"],
            target=r["target"],
            digest_at=r["digest_at"],
            language=r["language"],
            attempts=r["attempts"],
            deliveries=tuple(by_digest.get(r["digest_id"], ())),
        )
        for r in rows
    ]


async def settle(
    pool: asyncpg.Pool, digest: PendingDigest, outcome: Outcome, *, retry_delays: Sequence[timedelta], now: datetime
) -> str:
    """Record a digest attempt's outcome on the digest and each of its deliveries; returns the new status.

    `retry_delays[k]` is the wait after attempt k+1; past the last, the digest fails.
    """
    status, delay = outcome.next_status(digest.attempts, retry_delays)
    delivery_ids = [d.delivery_id for d in digest.deliveries]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """UPDATE email_digests SET status = $2, next_attempt_at = $3::timestamptz + $4::interval,
                      locked_until = NULL, last_error = CASE WHEN $2 = 'sent' THEN NULL ELSE $5 END,
                      sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
               WHERE digest_id = $1""",
            digest.digest_id, status, now, delay, outcome.detail,
        )  # fmt: skip
        # Deliveries wait in the digest while it is retried; they share its final status.
        await conn.execute(
            """UPDATE deliveries SET status = CASE WHEN $3 = 'retrying' THEN 'held' ELSE $3 END, attempts = $4,
                      last_error = CASE WHEN $3 = 'sent' THEN NULL ELSE $5 END,
                      sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END
               WHERE delivery_id = ANY($1::text[]) AND digest_id = $2""",
            delivery_ids, digest.digest_id, status, digest.attempts, outcome.detail,
        )  # fmt: skip
        await conn.executemany(
            """INSERT INTO delivery_attempts (delivery_id, attempt, outcome, detail) VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING""",
            [(d, digest.attempts, outcome.kind.value, outcome.detail[:2000]) for d in delivery_ids],
        )
    return status


async def suppression(pool: asyncpg.Pool, address: str) -> str | None:
    """Why `address` is on the suppression list, or None."""
    reason: str | None = await pool.fetchval(
        "SELECT reason FROM email_suppressions WHERE address = $1", address.strip().lower()
    )
    return reason


async def suppress(pool: asyncpg.Pool, address: str, reason: str) -> None:
    """Put `address` on the suppression list (the first reason is kept)."""
    await pool.execute(
        "INSERT INTO email_suppressions (address, reason) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        address.strip().lower(),
        reason[:2000],
    )
