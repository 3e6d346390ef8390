"""The transactional outbox: changes are written beside the rows they describe, then relayed to Kafka.

A change is never lost between the database commit and the broker: the relay publishes rows in id order and
marks them only after the broker acknowledged them. A crash in between publishes a row twice, which the
consumers absorb (upserts keyed by id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from faststream.kafka import KafkaBroker

from services.runtime.broker import publish_all

_log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "tenderwatch_outbox"
_BATCH = 100
_IDLE_POLL_SECONDS = 2.0


async def add(conn: asyncpg.Connection, *, topic: str, key: str, value: bytes | None) -> None:
    """Queue an event in the caller's transaction; `value=None` is a tombstone."""
    await conn.execute("INSERT INTO outbox (topic, key, value) VALUES ($1, $2, $3)", topic, key, value)
    await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, broker: KafkaBroker) -> None:
        self._pool = pool
        self._broker = broker
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._listener = await self._pool.acquire()
        await self._listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            await self._pool.release(self._listener)

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch of pending events; returns how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            # FOR UPDATE: two API instances never relay the same rows at once, and order per key is kept.
            rows = await conn.fetch(
                """SELECT id, topic, key, value FROM outbox WHERE published_at IS NULL
                   ORDER BY id LIMIT $1 FOR UPDATE""",
                _BATCH,
            )
            # Queued in id order, acknowledged together; the rows are marked only once the broker has them all.
            await publish_all(
                self._broker.publish(row["value"], row["topic"], key=row["key"].encode(), no_confirm=True)
                for row in rows
            )
            if rows:
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
                )
        return len(rows)

    async def _run(self) -> None:
        while True:
            try:
                relayed = await self.relay_once()
            except Exception:
                _log.exception("outbox relay failed; retrying")
                relayed = 0
                await asyncio.sleep(1.0)
            if relayed < _BATCH:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _IDLE_POLL_SECONDS)
