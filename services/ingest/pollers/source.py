"""What a source poller is: a pure description of one public API's pages, with no I/O.

A poller turns a cursor into the request for the next page (`request`) and a fetched page into the documents
it holds and the cursor after it (`parse_page`). The loop in `poll.py` does the fetching, so the page logic of
every source is unit-tested on recorded responses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

# A cursor is stored as JSON (PostgreSQL jsonb): plain strings, numbers and nulls only.
Cursor = dict[str, Any]


class PollError(RuntimeError):
    """A poll run stopped before the end; its cursor was not advanced past the page that failed.

    Raised for a source that keeps failing (network errors, 5xx, 429 after every attempt), that answers with an
    error status we cannot retry, or whose response we cannot read. The next run starts again at that page.
    """


@dataclass(frozen=True)
class PageRequest:
    method: Literal["GET", "POST"]
    url: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None


@dataclass(frozen=True)
class PageResponse:
    """A fetched page and the cursor it was fetched for."""

    cursor: Cursor
    url: str
    body: bytes


@dataclass(frozen=True)
class FetchedDocument:
    body: bytes
    content_type: str
    filename: str


@dataclass(frozen=True)
class DocumentLink:
    """A document a page points at, which the poll loop downloads (TED gives links, not notices)."""

    url: str
    content_type: str
    filename: str


@dataclass(frozen=True)
class Page:
    documents: list[FetchedDocument]
    next_cursor: Cursor
    done: bool
    links: list[DocumentLink] = field(default_factory=list)


class PollSource(Protocol):
    """One public API polled page by page. `name` is the cursor key and the documents' origin."""

    @property
    def name(self) -> str: ...

    def initial_cursor(self) -> Cursor: ...

    def request(self, cursor: Cursor) -> PageRequest: ...

    def parse_page(self, response: PageResponse) -> Page: ...


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-cased: what redirects and links are checked against."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def json_page(response: PageResponse) -> dict[str, Any]:
    """The JSON object of a search page; PollError (the run stops, cursor unchanged) if it is anything else."""
    try:
        value = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        start = response.body[:120].decode("utf-8", "replace")
        raise PollError(f"{response.url} did not answer JSON ({exc}); it began with {start!r}") from None
    if not isinstance(value, dict):
        raise PollError(f"{response.url} answered a JSON {type(value).__name__}, not an object")
    return value
