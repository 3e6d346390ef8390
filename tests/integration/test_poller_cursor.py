"""CursorStore on a real PostgreSQL database, in the ingest schema, with the ingest migrations."""

from __future__ import annotations

import pytest

from services.ingest.pollers import CursorStore
from services.runtime.db import apply_migrations, create_pool
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration


async def test_cursors_survive_a_new_pool_and_are_replaced_not_duplicated(settings: Settings) -> None:
    pool = await create_pool(settings, schema="ingest")
    try:
        await apply_migrations(pool, service="ingest", package="services.ingest")  # another test may have run them
        assert await pool.fetchval("SELECT to_regclass('poller_cursors')::text") == "poller_cursors"
        store = CursorStore(pool)
        assert await store.load("ted") is None
        await store.save("ted", {"since": "20240101", "token": "t1", "latest": "20240312"})
        await store.save("ted", {"since": "20240101", "token": "t2", "latest": "20240411"})
        await store.save("boamp", {"since": "2017-01-04", "offset": 1})
    finally:
        await pool.close()

    # a "restart": a new pool, a new store
    pool = await create_pool(settings, schema="ingest")
    try:
        assert await apply_migrations(pool, service="ingest", package="services.ingest") == []
        store = CursorStore(pool)
        assert await store.load("ted") == {"since": "20240101", "token": "t2", "latest": "20240411"}
        assert await store.load("boamp") == {"since": "2017-01-04", "offset": 1}
        rows = await pool.fetch(
            "SELECT source, updated_at FROM poller_cursors WHERE source IN ('ted', 'boamp') ORDER BY source"
        )
        assert [r["source"] for r in rows] == ["boamp", "ted"]
        assert all(r["updated_at"] is not None for r in rows)
        await store.reset("ted")
        assert await store.load("ted") is None
        assert await store.load("boamp") == {"since": "2017-01-04", "offset": 1}
    finally:
        await pool.close()
