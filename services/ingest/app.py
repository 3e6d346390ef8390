"""Ingest: source documents in, canonical notices out (`notices.received`).

Documents arrive on `documents.received` (from `tenderwatch import` and pollers) or over HTTP from the API
(`POST /v1/documents`, internal). Each is parsed, stored raw, deduplicated on (notice id, version) and
published once. A document that cannot be parsed goes to `documents.received.dlq` with the reason.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass

import asyncpg
from faststream.kafka.annotations import KafkaMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from schemas import DOCUMENT_HEADERS, Notice, Topic
from services.ingest.pollers import PollError
from services.ingest.polling import Polling, SourceBusyError
from services.ingest.sources import DocumentError, parse_document, source_format
from services.runtime import correlation
from services.runtime.metrics import NOTICES_INGESTED
from services.runtime.service import Runtime
from services.runtime.settings import Settings

_log = logging.getLogger(__name__)

SERVICE = "ingest"


@dataclass(frozen=True)
class Accepted:
    """One notice of an accepted document; `duplicate` when that version was published before."""

    notice: Notice
    duplicate: bool

    def summary(self) -> dict[str, str | bool]:
        return {
            "notice_id": self.notice.notice_id,
            "version": self.notice.version,
            "kind": self.notice.kind.value,
            "duplicate": self.duplicate,
        }


class Ingest:
    def __init__(self, settings: Settings) -> None:
        self.runtime = Runtime(settings, service=SERVICE, migrations="services.ingest")
        self._notices = self.runtime.publisher(
            Topic.NOTICES_RECEIVED, schema=Notice, description="Canonical notices, keyed by notice_id"
        )
        self.runtime.consume(
            Topic.DOCUMENTS_RECEIVED,
            self._on_document,
            description="Raw source documents (bytes as published), keyed by content hash",
        )
        self.polling = Polling(settings, lambda: self.runtime.pool, self.accept, self._reject)
        self.runtime.on_start(self.polling.start)
        self.runtime.on_stop(self.polling.stop)

    async def _reject(self, body: bytes, error: DocumentError, described: dict[str, str] | None = None) -> None:
        """Keep a document no parser accepted, like a rejected message of documents.received."""
        await self.runtime.dead_letters.send(
            body,
            error=error,
            topic=Topic.DOCUMENTS_RECEIVED.value,
            partition=None,
            offset=None,
            attempts=1,
            original=described,
        )

    async def _on_document(self, msg: KafkaMessage) -> None:
        # The raw bytes as published, whatever their content type: parsing is ingest's job, not the decoder's.
        headers = msg.headers
        await self.accept(
            msg.body,
            content_type=headers.get(DOCUMENT_HEADERS.CONTENT_TYPE),
            filename=headers.get(DOCUMENT_HEADERS.FILENAME),
            origin=headers.get(DOCUMENT_HEADERS.ORIGIN, "topic"),
        )

    async def accept(
        self, body: bytes, *, content_type: str | None, filename: str | None, origin: str
    ) -> list[Accepted]:
        """Parse, store and publish one document's notices. Raises DocumentError for a document we cannot read.

        The document keeps the correlation id it came with; one from a poller gets a new one here.
        """
        with correlation.ensured():
            return await self._accept(body, content_type=content_type, filename=filename, origin=origin)

    async def _accept(
        self, body: bytes, *, content_type: str | None, filename: str | None, origin: str
    ) -> list[Accepted]:
        notices = parse_document(
            body, content_type=content_type, filename=filename, max_bytes=self.runtime.settings.max_document_bytes
        )
        digest = hashlib.sha256(body).hexdigest()
        accepted: list[Accepted] = []
        async with self.runtime.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO raw_documents
                   (sha256, source, origin, filename, content_type, size_bytes, notices, body)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sha256) DO NOTHING""",
                digest, notices[0].source, origin, filename, content_type, len(body), len(notices), body,
            )  # fmt: skip
            for notice in notices:
                published = await self._publish_once(conn, notice, digest)
                accepted.append(Accepted(notice=published or notice, duplicate=published is None))
        for item in accepted:
            if not item.duplicate:
                NOTICES_INGESTED.labels(service=SERVICE, source_format=source_format(item.notice)).inc()
        _log.info(
            "accepted document",
            extra={
                "sha256": digest,
                "origin": origin,
                "notices": len(accepted),
                "new": sum(not a.duplicate for a in accepted),
                "notice_ids": ",".join(a.notice.notice_id for a in accepted[:20]),
            },
        )
        return accepted

    async def _publish_once(self, conn: asyncpg.Connection, notice: Notice, digest: str) -> Notice | None:
        """Publish `notice` unless the same content was published before; returns what was published.

        Dedupe is on content, not on the version the source claims: a source that changes a notice without
        changing its revision (or reuses release ids) still gets its change through, as a new version.
        """
        content_hash = hashlib.sha256(notice.model_dump_json(exclude={"version"}).encode()).hexdigest()
        if await conn.fetchval(
            "SELECT true FROM published_notices WHERE notice_id = $1 AND content_hash = $2",
            notice.notice_id,
            content_hash,
        ):
            return None
        inserted = await conn.fetchval(
            """INSERT INTO published_notices (notice_id, version, sha256, content_hash) VALUES ($1, $2, $3, $4)
               ON CONFLICT DO NOTHING RETURNING true""",
            notice.notice_id,
            notice.version,
            digest,
            content_hash,
        )
        if not inserted:  # the version is taken by other content: this is a new version all the same
            notice = notice.model_copy(update={"version": f"{notice.version}~{content_hash[:12]}"})
            await conn.execute(
                """INSERT INTO published_notices (notice_id, version, sha256, content_hash) VALUES ($1, $2, $3, $4)
                   ON CONFLICT DO NOTHING""",
                notice.notice_id,
                notice.version,
                digest,
                content_hash,
            )
        # Published inside the transaction: if the broker fails, the dedupe keys are rolled back and the
        # document can be received again; a crash after the send may publish twice, which downstream
        # idempotency (match ids, delivery keys) absorbs.
        await self._notices.publish(notice, key=notice.notice_id.encode())
        return notice

    async def _http_document(self, request: Request) -> JSONResponse:
        # The document's trace starts here: the caller's id if it sent one, else a new one, returned either way.
        with correlation.bound(correlation.accepted_id(request.headers.get(correlation.HTTP_HEADER))) as trace:
            answer = await self._receive_document(request)
        answer.headers[correlation.HTTP_HEADER] = trace
        return answer

    async def _receive_document(self, request: Request) -> JSONResponse:
        limit = self.runtime.settings.max_document_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return _problem(413, "too-large", f"the document has {declared} bytes; the limit is {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _problem(413, "too-large", f"the document exceeds the limit of {limit} bytes")
        data = bytes(body)
        described = {
            DOCUMENT_HEADERS.CONTENT_TYPE: request.headers.get("content-type") or "",
            DOCUMENT_HEADERS.FILENAME: request.headers.get("x-filename") or "",
            DOCUMENT_HEADERS.ORIGIN: request.headers.get("x-origin") or "http",
        }
        try:
            accepted = await self.accept(
                data,
                content_type=described[DOCUMENT_HEADERS.CONTENT_TYPE] or None,
                filename=described[DOCUMENT_HEADERS.FILENAME] or None,
                origin=described[DOCUMENT_HEADERS.ORIGIN],
            )
        except DocumentError as exc:
            await self._reject(data, exc, described)
            return _problem(422, exc.reason, str(exc))
        if len(accepted) == 1:
            return JSONResponse(accepted[0].summary(), status_code=202)
        return JSONResponse(
            {"notice_ids": [a.notice.notice_id for a in accepted], "notices": [a.summary() for a in accepted]},
            status_code=202,
        )

    async def _http_poll(self, request: Request) -> JSONResponse:
        name = request.path_params["source"]
        raw_pages = request.query_params.get("max_pages")
        if raw_pages is not None and not raw_pages.isdigit():
            return _problem(422, "invalid-value", f"max_pages must be a whole number, not {raw_pages!r}")
        if name not in self.polling.sources:
            return _problem(404, "unknown-source", f"no poller named {name!r}; known: {sorted(self.polling.sources)}")
        try:
            report = await self.polling.run(name, max_pages=int(raw_pages) if raw_pages else None)
        except SourceBusyError as exc:
            return _problem(409, "busy", str(exc))
        except PollError as exc:
            return _problem(502, "poll-failed", f"{exc}; the cursor did not move, the next run reads the same pages")
        return JSONResponse(asdict(report))

    def asgi(self) -> Starlette:
        routes = [
            *self.runtime.health_routes(),
            Route("/v1/documents", self._http_document, methods=["POST"]),
            Route("/v1/poll/{source:path}", self._http_poll, methods=["POST"]),
        ]
        return Starlette(routes=routes, lifespan=self.runtime.lifespan)


def _problem(status: int, reason: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": reason, "detail": detail}, status_code=status)
