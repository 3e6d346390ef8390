from __future__ import annotations

import pytest

from services.runtime.settings import Settings


@pytest.fixture
def settings(stack_env: dict[str, str]) -> Settings:
    return Settings(
        kafka_bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_enable_idempotence=stack_env["KAFKA_ENABLE_IDEMPOTENCE"] == "true",
        database_url=stack_env["DATABASE_URL"],
        processing_attempts=3,
    )
