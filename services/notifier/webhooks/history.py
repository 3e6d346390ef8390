"""An endpoint's deliveries and their attempts, and replaying one: what the API shows and does for the owner.

Served on the notifier's own HTTP port under `/internal/` (the API checks that the caller owns the endpoint and
passes its account as `subscriber_id`, which is checked again here). Like ingest's internal routes, they are for
the API alone: do not expose the notifier's port.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.notifier import queue
from services.notifier.webhooks.payload import EventType, webhook_message_id

MAX_LIMIT = 100
_DEFAULT_LIMIT = 20


class ReplayResult(StrEnum):
    QUEUED = "queued"
    NOT_FOUND = "not_found"
    IN_PROGRESS = "in_progress"  # not settled yet: it is being sent or waits for its next attempt
    ENDPOINT_DISABLED = "endpoint_disabled"


async def list_deliveries(
    pool: asyncpg.Pool, endpoint_id: str, subscriber_id: str, *, limit: int, before: datetime | None
) -> list[dict[str, Any]]:
    """The endpoint's deliveries, newest first, each with every attempt made."""
    rows = await pool.fetch(
        """SELECT delivery_id, match_id, notice_id, notice_version, status, attempts, created_at, sent_at,
                  next_attempt_at, last_error,
                  coalesce((match->'notice'->>'is_change')::boolean, false)
                      OR coalesce((match->'notice'->>'cancelled')::boolean, false) AS is_update
           FROM deliveries
           WHERE channel = 'webhook' AND target = $1 AND subscriber_id = $2
             AND ($4::timestamptz IS NULL OR created_at < $4)
           ORDER BY created_at DESC, delivery_id LIMIT $3""",
        endpoint_id, subscriber_id, limit, before,
    )  # fmt: skip
    attempts = await pool.fetch(
        """SELECT delivery_id, attempt, at, outcome, detail FROM delivery_attempts
           WHERE delivery_id = ANY($1::text[]) ORDER BY delivery_id, attempt""",
        [r["delivery_id"] for r in rows],
    )
    by_delivery: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        by_delivery.setdefault(a["delivery_id"], []).append(
            {"attempt": a["attempt"], "at": a["at"].isoformat(), "outcome": a["outcome"], "detail": a["detail"]}
        )
    return [
        {
            "id": r["delivery_id"],
            "webhook_id": webhook_message_id(r["match_id"], endpoint_id),
            "type": (EventType.NOTICE_UPDATED if r["is_update"] else EventType.NOTICE_MATCHED).value,
            "match_id": r["match_id"],
            "notice_id": r["notice_id"],
            "notice_version": r["notice_version"],
            "status": r["status"],
            "created_at": r["created_at"].isoformat(),
            "sent_at": None if r["sent_at"] is None else r["sent_at"].isoformat(),
            "next_attempt_at": r["next_attempt_at"].isoformat() if r["status"] in ("pending", "retrying") else None,
            "last_error": r["last_error"],
            "attempts": by_delivery.get(r["delivery_id"], []),
        }
        for r in rows
    ]


async def replay(pool: asyncpg.Pool, endpoint_id: str, subscriber_id: str, delivery_id: str) -> ReplayResult:
    """Queue one more attempt of a settled delivery, at once: the same body and the same `webhook-id`.

    The attempt is numbered after the earlier ones; should it fail, it is retried while the delivery's attempts
    stay within the retry schedule.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """SELECT d.status, e.active FROM deliveries d LEFT JOIN webhook_endpoints e ON e.endpoint_id = d.target
               WHERE d.delivery_id = $1 AND d.channel = 'webhook' AND d.target = $2 AND d.subscriber_id = $3
               FOR UPDATE OF d""",
            delivery_id,
            endpoint_id,
            subscriber_id,
        )
        if row is None:
            return ReplayResult.NOT_FOUND
        if row["status"] not in ("sent", "failed", "suppressed"):
            return ReplayResult.IN_PROGRESS
        if not row["active"]:
            return ReplayResult.ENDPOINT_DISABLED
        await conn.execute(
            """UPDATE deliveries SET status = 'pending', next_attempt_at = now(), locked_until = NULL
               WHERE delivery_id = $1""",
            delivery_id,
        )
        await conn.execute(f"NOTIFY {queue.NOTIFY_CHANNEL}")
    return ReplayResult.QUEUED


def internal_routes(pool: Callable[[], asyncpg.Pool]) -> list[Route]:
    """`GET /internal/webhook-endpoints/{id}/deliveries` and `POST .../deliveries/{delivery_id}/replay`."""

    async def deliveries(request: Request) -> JSONResponse:
        endpoint_id = request.path_params["endpoint_id"]
        subscriber_id = request.query_params.get("subscriber_id", "")
        try:
            limit = int(request.query_params.get("limit", _DEFAULT_LIMIT))
            before_text = request.query_params.get("before")
            before = None if before_text is None else datetime.fromisoformat(before_text)
        except ValueError as exc:
            return JSONResponse({"detail": f"bad query parameter: {exc}"}, status_code=422)
        if not subscriber_id or not 1 <= limit <= MAX_LIMIT:
            return JSONResponse({"detail": f"subscriber_id is required and limit is 1 to {MAX_LIMIT}"}, 422)
        if before is not None and before.tzinfo is None:
            return JSONResponse({"detail": "before must carry a time zone offset, e.g. 2026-01-31T08:00:00+00:00"}, 422)
        state = await pool().fetchrow(
            """SELECT active, disabled_reason, disabled_at, failing_since FROM webhook_endpoints
               WHERE endpoint_id = $1 AND subscriber_id = $2""",
            endpoint_id,
            subscriber_id,
        )
        found = await list_deliveries(pool(), endpoint_id, subscriber_id, limit=limit, before=before)
        return JSONResponse({"endpoint_id": endpoint_id, "endpoint": _state(state), "deliveries": found})

    async def replay_delivery(request: Request) -> JSONResponse:
        endpoint_id = request.path_params["endpoint_id"]
        delivery_id = request.path_params["delivery_id"]
        subscriber_id = request.query_params.get("subscriber_id", "")
        result = await replay(pool(), endpoint_id, subscriber_id, delivery_id)
        status = {
            ReplayResult.QUEUED: 202,
            ReplayResult.NOT_FOUND: 404,
            ReplayResult.IN_PROGRESS: 409,
            ReplayResult.ENDPOINT_DISABLED: 409,
        }[result]
        return JSONResponse({"delivery_id": delivery_id, "result": result.value}, status_code=status)

    return [
        Route("/internal/webhook-endpoints/{endpoint_id}/deliveries", deliveries, methods=["GET"]),
        Route(
            "/internal/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/replay",
            replay_delivery,
            methods=["POST"],
        ),
    ]


def _state(row: asyncpg.Record | None) -> dict[str, Any] | None:
    """Whether the notifier calls the endpoint now (None: it has not heard of the endpoint yet)."""
    if row is None:
        return None
    return {
        "active": row["active"],
        "disabled_reason": row["disabled_reason"],
        "disabled_at": None if row["disabled_at"] is None else row["disabled_at"].isoformat(),
        "failing_since": None if row["failing_since"] is None else row["failing_since"].isoformat(),
    }
