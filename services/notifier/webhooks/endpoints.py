"""Webhook endpoints as the notifier keeps them: secrets for signing, and the failures that disable an endpoint.

The API owns endpoints and publishes each change on `webhook-endpoints.changes`; the notifier keeps the latest one
and adds what only it sees: since when every call fails (`failing_since`, cleared by any success) and whether it
disabled the endpoint (a 410 answer, or failures for WEBHOOK_DISABLE_AFTER). A newer change from the API, such as a
secret rotation, turns a disabled endpoint back on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from schemas import WebhookEndpoint

_COLUMNS = """endpoint_id, subscriber_id, url, secret, previous_secret, previous_secret_expires_at, owner_email, active,
              disabled_reason, disabled_at, failing_since, owner_notified_at"""


@dataclass(frozen=True)
class Endpoint:
    endpoint_id: str
    subscriber_id: str
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    owner_email: str | None
    active: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    owner_notified_at: datetime | None

    def previous_secret_at(self, now: datetime) -> str | None:
        """The rotated-out secret while its overlap lasts, else None."""
        expires = self.previous_secret_expires_at
        if self.previous_secret is None or expires is None or expires <= now:
            return None
        return self.previous_secret


async def upsert(pool: asyncpg.Pool, endpoint: WebhookEndpoint) -> None:
    """Keep the API's latest change; only a strictly newer one re-enables an endpoint the notifier disabled (a
    redelivered event must not)."""
    await pool.execute(
        """INSERT INTO webhook_endpoints (endpoint_id, subscriber_id, url, secret, active, updated_at,
                                          previous_secret, previous_secret_expires_at, owner_email)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (endpoint_id) DO UPDATE SET url = $3, secret = $4, active = $5, updated_at = $6,
               previous_secret = $7, previous_secret_expires_at = $8,
               owner_email = COALESCE($9, webhook_endpoints.owner_email),
               disabled_reason = NULL, disabled_at = NULL, failing_since = NULL, owner_notified_at = NULL
           WHERE webhook_endpoints.updated_at < $6""",
        endpoint.endpoint_id, endpoint.subscriber_id, endpoint.url, endpoint.secret, endpoint.active,
        endpoint.updated_at, endpoint.previous_secret, endpoint.previous_secret_expires_at, endpoint.owner_email,
    )  # fmt: skip


async def load(pool: asyncpg.Pool, endpoint_id: str) -> Endpoint | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE endpoint_id = $1", endpoint_id)
    return None if row is None else Endpoint(**dict(row))


async def record_success(pool: asyncpg.Pool, endpoint_id: str) -> None:
    await pool.execute(
        "UPDATE webhook_endpoints SET failing_since = NULL WHERE endpoint_id = $1 AND failing_since IS NOT NULL",
        endpoint_id,
    )


async def record_failure(pool: asyncpg.Pool, endpoint_id: str, *, disable_after: timedelta) -> datetime | None:
    """Note a failed call; returns since when the endpoint has failed when that is `disable_after` or longer."""
    row = await pool.fetchrow(
        """UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now()) WHERE endpoint_id = $1
           RETURNING failing_since, failing_since <= now() - $2::interval AS too_long""",
        endpoint_id,
        disable_after,
    )
    if row is None or not row["too_long"]:
        return None
    since: datetime = row["failing_since"]
    return since


async def disable(pool: asyncpg.Pool, endpoint_id: str, reason: str) -> Endpoint | None:
    """Disable the endpoint; returns it when this call is the one that disabled it (so the owner is told once)."""
    row = await pool.fetchrow(
        f"""UPDATE webhook_endpoints SET active = false, disabled_reason = $2, disabled_at = now()
            WHERE endpoint_id = $1 AND active RETURNING {_COLUMNS}""",
        endpoint_id,
        reason,
    )
    return None if row is None else Endpoint(**dict(row))


async def mark_owner_notified(pool: asyncpg.Pool, endpoint_id: str, disabled_at: datetime) -> None:
    await pool.execute(
        "UPDATE webhook_endpoints SET owner_notified_at = now() WHERE endpoint_id = $1 AND disabled_at = $2",
        endpoint_id,
        disabled_at,
    )
