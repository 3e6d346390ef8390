"""The shell every service runs in: broker, database, health endpoints, graceful start and stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy
from faststream.specification import AsyncAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from schemas import Topic
from services.runtime.broker import ensure_topics, make_broker
from services.runtime.correlation import Correlation
from services.runtime.db import apply_migrations, create_pool
from services.runtime.dlq import DeadLetters
from services.runtime.logs import configure_logging
from services.runtime.metrics import ConsumerLag, MessageMetrics, exposition
from services.runtime.settings import Settings

_log = logging.getLogger(__name__)

# Health ports when HTTP_PORT is not set, so that every service can run side by side on one machine.
DEFAULT_PORTS = {"api": 8000, "ingest": 8001, "classifier": 8002, "matcher": 8003, "notifier": 8004}

Hook = Callable[[], Awaitable[None]]


class Runtime:
    """What one running service holds. Built without I/O; `start()` connects, `stop()` drains and closes."""

    def __init__(self, settings: Settings, *, service: str, migrations: str | None = None) -> None:
        self.settings = settings
        self.service = service
        self._migrations = migrations
        self.dead_letters = DeadLetters(service=service, attempts=settings.processing_attempts)
        self.broker: KafkaBroker = make_broker(
            settings.model_copy(update={"kafka_bootstrap_servers": settings.kafka_bootstrap_servers or "unset:9092"}),
            service=service,
            # Outermost first: the trace is bound around dead-lettering (dead letters keep it), and the counts
            # see the handler's own outcome before DeadLetters retries or dead-letters a failure.
            middlewares=[Correlation, self.dead_letters, MessageMetrics(service)],
        )
        self.dead_letters.bind(self.broker)
        self._lag = ConsumerLag(service, settings.kafka_bootstrap_servers)
        self._pool: asyncpg.Pool | None = None
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._checks: dict[str, Callable[[], bool]] = {}
        self.started = False

    @property
    def group_id(self) -> str:
        return f"tenderwatch-{self.service}"

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.service}: the database pool is used before the service started")
        return self._pool

    def publisher(self, topic: Topic, *, schema: type[BaseModel], description: str) -> Any:
        """A publisher on one of the platform's topics, documented in the service's AsyncAPI document."""
        return self.broker.publisher(topic.value, title=topic.value, description=description, schema=schema)

    def consume(
        self,
        topic: Topic,
        handler: Callable[..., Awaitable[None]],
        *,
        description: str | None = None,
        group_suffix: str = "",
        every_instance: bool = False,
    ) -> None:
        """Consume `topic` with `handler` from the earliest unread message.

        By default the service's instances share the topic's partitions in one consumer group, offsets are
        committed after the handler returns, and a failure seeks back (see DeadLetters). `every_instance`
        gives each instance every message, with no group and no commits: for state every instance must hold.
        """
        group_id = None if every_instance else self.group_id + group_suffix
        if group_id is not None:
            self._lag.track(group_id, topic.value)
        self.broker.subscriber(
            topic.value,
            group_id=group_id,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
            ack_policy=AckPolicy.ACK_FIRST if every_instance else AckPolicy.NACK_ON_ERROR,
            title=topic.value,
            description=description,
        )(handler)

    def on_start(self, hook: Hook) -> Hook:
        """Run after the database is ready and before consuming starts."""
        self._on_start.append(hook)
        return hook

    def add_readiness_check(self, name: str, check: Callable[[], bool]) -> None:
        """A service-specific condition `/ready` waits for, besides the broker and the database."""
        self._checks[name] = check

    def on_stop(self, hook: Hook) -> Hook:
        """Run after consuming stopped, before the producer and the database close: a hook may still publish."""
        self._on_stop.append(hook)
        return hook

    def asyncapi(self) -> dict[str, Any]:
        spec = AsyncAPI(self.broker, title=f"tenderwatch {self.service}", version="0.1.0")
        document: dict[str, Any] = spec.to_specification().to_jsonable()
        return document

    async def start(self) -> None:
        make_broker(self.settings, service=self.service)  # fails early, with the fix, when Kafka is not configured
        await ensure_topics(self.settings)
        if self._migrations is not None:
            self._pool = await create_pool(self.settings, schema=self.service)
            await apply_migrations(self._pool, service=self.service, package=self._migrations)
        for hook in self._on_start:
            await hook()
        await self.broker.start()
        self.started = True
        _log.info("service started", extra={"group": self.group_id})

    async def stop(self) -> None:
        self.started = False
        await self._stop_consuming()
        for hook in reversed(self._on_stop):
            try:
                await hook()
            except Exception:
                _log.exception("shutdown hook failed")
        await self.broker.stop()  # the producer now: what the hooks finished has been published
        await self._lag.close()
        if self._pool is not None:
            await self._pool.close()
        _log.info("service stopped")

    async def _stop_consuming(self) -> None:
        """Stop every subscriber: each waits for its message in hand (graceful_timeout), commits, and leaves its
        group. The producer stays open for what the shutdown hooks still publish."""
        results = await asyncio.gather(*(sub.stop() for sub in self.broker.subscribers), return_exceptions=True)
        for error in results:
            if isinstance(error, BaseException):
                _log.error("a consumer did not stop cleanly", exc_info=error)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {"consuming": "ok" if self.started else "starting"}
        checks["kafka"] = "ok" if self.started and await self.broker.ping(timeout=2.0) else "unavailable"
        if self._migrations is not None:
            try:
                async with asyncio.timeout(2.0):
                    await self.pool.fetchval("SELECT 1")
                checks["database"] = "ok"
            except Exception as exc:
                checks["database"] = f"unavailable: {type(exc).__name__}"
        for name, check in self._checks.items():
            checks[name] = "ok" if check() else "not yet"
        return checks

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def health_routes(self) -> list[Route]:
        async def health(_request: Request) -> JSONResponse:
            return JSONResponse({"status": "ok", "service": self.service})

        async def ready(_request: Request) -> JSONResponse:
            checks = await self.readiness()
            is_ready = all(v == "ok" for v in checks.values())
            return JSONResponse(
                {"status": "ready" if is_ready else "not ready", "service": self.service, "checks": checks},
                status_code=200 if is_ready else 503,
            )

        async def metrics(_request: Request) -> Response:
            if self.started:
                await self._lag.refresh()
            body, content_type = exposition()
            return Response(body, media_type=content_type)

        return [Route("/health", health), Route("/ready", ready), Route("/metrics", metrics)]

    def asgi(self) -> Starlette:
        """The HTTP side of a service that has no API of its own: /health, /ready and /metrics."""
        return Starlette(routes=self.health_routes(), lifespan=self.lifespan)


def serve(app: Any, settings: Settings, *, service: str) -> None:
    """Run a service until SIGINT/SIGTERM, then shut it down gracefully."""
    configure_logging(service, level=settings.log_level, fmt=settings.log_format)
    port = settings.http_port or DEFAULT_PORTS[service]
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
    )
    server = uvicorn.Server(config)
    _log.info("listening", extra={"host": settings.http_host, "port": port})
    asyncio.run(server.serve())
    if not server.started:
        raise SystemExit(f"{service} did not start: see the errors above")
