"""The broker and database a benchmark runs against: those of the environment when set, else embedded ones."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def stack_environment(*, kafka: bool = True) -> Iterator[dict[str, str]]:
    """DATABASE_URL (and KAFKA_BOOTSTRAP_SERVERS, KAFKA_ENABLE_IDEMPOTENCE when `kafka`) of the environment when
    set, else those of an embedded stack started for the duration of the run."""
    wanted = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL") if kafka else ("DATABASE_URL",)
    if all(os.environ.get(name) for name in wanted):
        environment = {name: os.environ[name] for name in wanted}
        if kafka:
            environment["KAFKA_ENABLE_IDEMPOTENCE"] = os.environ.get("KAFKA_ENABLE_IDEMPOTENCE", "true")
        yield environment
        return
    from services.runtime.embedded import EmbeddedStack

    with tempfile.TemporaryDirectory(prefix="bench-") as workdir, EmbeddedStack(Path(workdir), kafka=kafka) as stack:
        yield stack.environment()
