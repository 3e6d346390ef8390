"""Reading back what a test published or a service produced, from the real broker, within a bounded time."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from services.runtime.settings import Settings


async def read_records(
    settings: Settings, topic: str, *, want: int, key: bytes | None = None, timeout: float = 20.0
) -> list[Any]:
    """The records of `topic` from its start (those with `key` only, when given), until `want` are found or
    `timeout` seconds have passed: the caller asserts on what came back."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(found) < want and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(r for r in batch if key is None or r.key == key)
    finally:
        await consumer.stop()
    return found
