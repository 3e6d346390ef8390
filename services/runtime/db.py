"""PostgreSQL: the connection pool and the SQL migrations each service applies at start."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from services.runtime.settings import Settings

_log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_]+$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    service     text        NOT NULL,
    version     integer     NOT NULL,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str) -> list[Migration]:
    """The `migrations/NNN_name.sql` files of a service package, in order."""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"{package}: two migrations share a version number: {versions}")
    return found


async def apply_migrations(pool: asyncpg.Pool, *, service: str, package: str) -> list[str]:
    """Apply the service's pending migrations, each in its own transaction; idempotent; safe across instances.

    A migration already applied whose file changed since is an error: migrations are append-only.
    """
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        # One instance migrates at a time; the others wait, then find nothing to do.
        lock_key = int.from_bytes(hashlib.sha256(f"migrations:{service}".encode()).digest()[:8], "big", signed=True)
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(_LEDGER)
            rows = await conn.fetch("SELECT version, checksum FROM schema_migrations WHERE service = $1", service)
            done = {r["version"]: r["checksum"] for r in rows}
            for migration in load_migrations(package):
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise RuntimeError(
                            f"{service}: migration {migration.name} changed after it was applied; "
                            "add a new migration instead of editing an applied one"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (service, version, name, checksum) VALUES ($1, $2, $3, $4)",
                        service,
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                applied_now.append(migration.name)
                _log.info("applied migration", extra={"migration": migration.name})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    return applied_now


async def create_pool(settings: Settings, *, schema: str) -> asyncpg.Pool:
    """A pool whose connections work in the service's own PostgreSQL schema.

    Each service owns its tables (DESIGN.md §1): one schema per service keeps them apart even when the
    services share a database server, and lets ops give each service its own database role later.
    """
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema name {schema!r} must be lower-case letters and underscores")
    dsn = settings.database_url.get_secret_value()
    if not dsn:
        raise RuntimeError(
            "DATABASE_URL is not set: start the platform with `tenderwatch run` (embedded PostgreSQL) "
            "or point DATABASE_URL at a PostgreSQL database"
        )
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except asyncpg.UniqueViolationError:
        pass  # another instance created it at the same moment
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=settings.database_pool_size, server_settings={"search_path": schema}
    )
    if pool is None:  # pragma: no cover - asyncpg returns None only for a pool it did not initialise
        raise RuntimeError("could not create the database pool")
    return pool
