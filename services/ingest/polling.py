"""The pollers the ingest service runs: built from the settings, scheduled, one instance at a time per source.

A scheduled run and a run asked for over HTTP (`tenderwatch poll SOURCE`) take the same PostgreSQL advisory
lock per source, so two ingest instances never read the same source at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from services.ingest.pollers import (
    BoampPoller,
    CursorStore,
    FetchPolicy,
    OcdsPoller,
    PollReport,
    PollSource,
    TedPoller,
    poll,
)
from services.ingest.pollers.poll import Accept, OnRejected
from services.runtime.settings import Settings

_log = logging.getLogger(__name__)


class SourceBusyError(RuntimeError):
    """Another run of the same source holds its lock."""


def sources_from_settings(settings: Settings) -> dict[str, PollSource]:
    """Every source this deployment can poll, by name (`ted`, `boamp`, `ocds:<host>`)."""
    since = (datetime.now(UTC) - timedelta(days=settings.poll_since_days)).date()
    sources: dict[str, PollSource] = {
        "ted": TedPoller(query=settings.ted_query, since=since, search_url=settings.ted_search_url),
        "boamp": BoampPoller(since=since, records_url=settings.boamp_records_url),
    }
    for url in filter(None, (u.strip() for u in settings.ocds_urls.split(","))):
        name = f"ocds:{urlsplit(url).netloc}"
        sources[name] = OcdsPoller(start_url=url, name=name)
    return sources


class Polling:
    def __init__(
        self,
        settings: Settings,
        pool: Callable[[], asyncpg.Pool],
        accept: Accept,
        on_rejected: OnRejected,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._accept = accept
        self._on_rejected = on_rejected
        self.sources = sources_from_settings(settings)
        self._scheduled = [name.strip() for name in settings.poll_sources.split(",") if name.strip()]
        unknown = [name for name in self._scheduled if name != "ocds" and name not in self.sources]
        if unknown:
            raise ValueError(f"POLL_SOURCES names unknown pollers {unknown}; known: {sorted(self.sources)}")
        self._tasks: list[asyncio.Task[None]] = []

    def _resolve(self, name: str) -> list[str]:
        return [n for n in self.sources if n.startswith("ocds:")] if name == "ocds" else [name]

    async def run(self, name: str, *, max_pages: int | None = None) -> PollReport:
        """Poll one source now. Raises KeyError (unknown source), SourceBusyError, or PollError."""
        source = self.sources[name]
        lock = int.from_bytes(hashlib.sha256(f"poll:{name}".encode()).digest()[:8], "big", signed=True)
        async with self._pool().acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
                raise SourceBusyError(f"{name} is being polled already; try again when that run ends")
            try:
                async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:
                    report = await poll(
                        source,
                        client=client,
                        cursors=CursorStore(self._pool()),
                        accept=self._accept,
                        on_rejected=self._on_rejected,
                        max_pages=max_pages,
                        policy=FetchPolicy(max_document_bytes=self._settings.max_document_bytes),
                        progress=lambda r: _log.info("poll progress", extra=_report_fields(r)),
                    )
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", lock)
        _log.info("poll finished", extra=_report_fields(report))
        return report

    async def start(self) -> None:
        for name in self._scheduled:
            for resolved in self._resolve(name):
                self._tasks.append(asyncio.create_task(self._every_interval(resolved), name=f"poll-{resolved}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _every_interval(self, name: str) -> None:
        while True:
            await _logged(name, self.run(name))
            await asyncio.sleep(self._settings.poll_interval_seconds)


async def _logged(name: str, run: Awaitable[PollReport]) -> None:
    try:
        await run
    except SourceBusyError:
        _log.info("poll skipped: another instance is polling", extra={"source": name})
    except Exception:
        # The cursor did not move: the next scheduled run reads the same pages again.
        _log.exception("poll failed; the next run starts from the same cursor", extra={"source": name})


def _report_fields(report: PollReport) -> dict[str, Any]:
    return {f"poll_{key}": value for key, value in asdict(report).items()}
