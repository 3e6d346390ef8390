"""One poll run: read pages from the stored cursor until the source has no more, handing documents to ingest.

Order of work for each page: fetch it (retried, never skipped), download the documents it links to, give
every document to `accept`; a document `accept` rejects (DocumentError) goes to `on_rejected` and the run
goes on. Only then is the page's next cursor saved, so a crash or a `PollError` re-reads the page on the
next run (ingest deduplicates what it had already accepted). Any other exception from `accept` (database or
broker down) stops the run the same way, cursor unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from services.ingest.pollers._http import FetchPolicy, HttpFetcher, TooLargeError
from services.ingest.pollers.cursors import CursorStorage
from services.ingest.pollers.source import FetchedDocument, PageRequest, PageResponse, PollError, PollSource
from services.ingest.sources._errors import DocumentError


class Accept(Protocol):
    """Ingest's entry for one document (`Ingest.accept`): returns its notices, raises DocumentError."""

    async def __call__(
        self, body: bytes, *, content_type: str | None, filename: str | None, origin: str
    ) -> Sequence[object]: ...


OnRejected = Callable[[bytes, DocumentError], Awaitable[None]]


@dataclass(frozen=True)
class PollReport:
    source: str
    pages: int
    documents: int  # accepted documents
    notices: int  # notices in the accepted documents (new or already known)
    rejected: int  # documents sent to `on_rejected`
    duration: float  # seconds
    done: bool  # the source had no more pages (False: stopped by max_pages)


async def poll(
    source: PollSource,
    *,
    client: httpx.AsyncClient,
    cursors: CursorStorage,
    accept: Accept,
    on_rejected: OnRejected,
    max_pages: int | None = None,
    progress: Callable[[PollReport], None] | None = None,
    policy: FetchPolicy | None = None,
) -> PollReport:
    """Poll `source` from its stored cursor (or its start) to the end, or for `max_pages` pages. Raises PollError."""
    if max_pages is not None and max_pages < 1:
        raise ValueError(f"max_pages must be at least 1, not {max_pages}")
    policy = policy or FetchPolicy()
    fetcher = HttpFetcher(client, policy)
    started = time.monotonic()
    cursor = await cursors.load(source.name) or source.initial_cursor()
    pages = documents = notices = rejected = 0
    done = False
    while not done and (max_pages is None or pages < max_pages):
        request = source.request(cursor)
        body = await fetcher.fetch(request, max_bytes=policy.max_page_bytes)
        page = source.parse_page(PageResponse(cursor=cursor, url=request.url, body=body))
        if not page.done and page.next_cursor == cursor:
            raise PollError(f"{source.name}: the page at cursor {cursor} points back to itself; stopping")
        batch = list(page.documents)
        for link in page.links:
            try:
                data = await fetcher.fetch(PageRequest("GET", link.url), max_bytes=policy.max_document_bytes)
            except TooLargeError as exc:
                await on_rejected(b"", DocumentError("too-large", f"{link.url}: {exc}"))
                rejected += 1
                continue
            batch.append(FetchedDocument(body=data, content_type=link.content_type, filename=link.filename))
        for document in batch:
            try:
                found = await accept(
                    document.body, content_type=document.content_type, filename=document.filename, origin=source.name
                )
            except DocumentError as exc:
                await on_rejected(document.body, exc)
                rejected += 1
            else:
                documents += 1
                notices += len(found)
        await cursors.save(source.name, page.next_cursor)
        pages += 1
        done = page.done
        cursor = page.next_cursor
        if progress is not None:
            progress(_report(source, pages, documents, notices, rejected, started, done))
    return _report(source, pages, documents, notices, rejected, started, done)


def _report(
    source: PollSource, pages: int, documents: int, notices: int, rejected: int, started: float, done: bool
) -> PollReport:
    return PollReport(
        source=source.name,
        pages=pages,
        documents=documents,
        notices=notices,
        rejected=rejected,
        duration=time.monotonic() - started,
        done=done,
    )
