"""Where the tests get Kafka and PostgreSQL: the environment, else Docker, else the embedded stack.

1. KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL set: use them (CI with services, a developer's cluster).
2. A Docker engine answers: Apache Kafka and PostgreSQL containers (testcontainers).
3. Otherwise: the embedded stack (Tansu broker and PostgreSQL from wheels), as `tenderwatch run` uses.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def docker_engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def stack_environment(workdir: Path) -> Iterator[dict[str, str]]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    database = os.environ.get("DATABASE_URL")
    if kafka and database:
        yield {
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "DATABASE_URL": database,
            "KAFKA_ENABLE_IDEMPOTENCE": os.environ.get("KAFKA_ENABLE_IDEMPOTENCE", "true"),
        }
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with KafkaContainer().with_kraft() as kafka_container, PostgresContainer("postgres:16") as pg:
            yield {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_container.get_bootstrap_server(),
                "DATABASE_URL": pg.get_connection_url(driver=None),
                "KAFKA_ENABLE_IDEMPOTENCE": "true",
            }
        return
    from services.runtime.embedded import EmbeddedStack

    with EmbeddedStack(workdir) as stack:
        yield stack.environment()
