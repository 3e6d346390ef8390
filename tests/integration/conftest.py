from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.runtime.settings import Settings


@pytest.fixture(scope="session")
def integration_database(stack_env: dict[str, str]) -> Iterator[str]:
    """A database of its own, so that no running service of the end-to-end tests touches these tables."""
    server = stack_env["DATABASE_URL"]
    name = f"tw_integration_{uuid.uuid4().hex[:8]}"

    async def _execute(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(_execute(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(server)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    asyncio.run(_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(stack_env: dict[str, str], integration_database: str) -> Settings:
    return Settings(
        kafka_bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_enable_idempotence=stack_env["KAFKA_ENABLE_IDEMPOTENCE"] == "true",
        database_url=integration_database,
        processing_attempts=3,
    )
