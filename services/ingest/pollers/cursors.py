"""Poller cursors kept in PostgreSQL (table `poller_cursors` of the ingest schema), and an in-memory double."""

from __future__ import annotations

import copy
import json
from typing import Protocol

import asyncpg

from services.ingest.pollers.source import Cursor


class CursorStorage(Protocol):
    async def load(self, source: str) -> Cursor | None: ...

    async def save(self, source: str, cursor: Cursor) -> None: ...

    async def reset(self, source: str) -> None: ...


class CursorStore:
    """Cursors in the ingest database; `pool` must work in the ingest schema (`create_pool(..., schema="ingest")`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, source: str) -> Cursor | None:
        raw = await self._pool.fetchval("SELECT cursor FROM poller_cursors WHERE source = $1", source)
        if raw is None:
            return None
        cursor = json.loads(raw)  # asyncpg hands jsonb over as text
        if not isinstance(cursor, dict):
            raise RuntimeError(f"the stored cursor of {source} is not a JSON object; reset it with `reset({source!r})`")
        return cursor

    async def save(self, source: str, cursor: Cursor) -> None:
        await self._pool.execute(
            """INSERT INTO poller_cursors (source, cursor, updated_at) VALUES ($1, $2::jsonb, now())
               ON CONFLICT (source) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()""",
            source,
            json.dumps(cursor),
        )

    async def reset(self, source: str) -> None:
        """Forget where a source stopped: its next run starts from the source's configured start."""
        await self._pool.execute("DELETE FROM poller_cursors WHERE source = $1", source)


class FakeCursorStore:
    """In-memory cursors for unit tests; `saved` lists every save in order."""

    def __init__(self, cursors: dict[str, Cursor] | None = None) -> None:
        self.cursors: dict[str, Cursor] = copy.deepcopy(cursors or {})
        self.saved: list[tuple[str, Cursor]] = []

    async def load(self, source: str) -> Cursor | None:
        cursor = self.cursors.get(source)
        return copy.deepcopy(cursor) if cursor is not None else None

    async def save(self, source: str, cursor: Cursor) -> None:
        self.cursors[source] = copy.deepcopy(cursor)
        self.saved.append((source, copy.deepcopy(cursor)))

    async def reset(self, source: str) -> None:
        self.cursors.pop(source, None)
