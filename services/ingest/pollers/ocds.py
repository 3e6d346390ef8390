"""Any OCDS endpoint serving release packages, followed through `links.next`.

What it looks like (OCDS 1.1 release package schema; the OCDS pagination extension,
open-contracting-extensions/ocds_pagination_extension, adds a top-level `links` object whose `next` is the URL
of the following package; UK Contracts Finder's `Published/Notices/OCDS/Search` works this way, with a
`cursor` parameter in `next`): each page is a release package `{"uri", "publishedDate", "publisher",
"releases": [...], "links": {"next": url}}`, and each page is given to ingest as one document, as received.
The last page has no `links.next`.

Cursor: `{"url": page to read next}`. A finished run keeps the URL of the last page, read again next time:
feeds paginated by `since` or `cursor` append new releases there (those read twice are deduplicated).
`links.next` must stay on the origin of `start_url`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from services.ingest.pollers.source import (
    Cursor,
    FetchedDocument,
    Page,
    PageRequest,
    PageResponse,
    PollError,
    json_page,
    origin_of,
)


@dataclass(frozen=True)
class OcdsPoller:
    """Release packages from `start_url` on; `name` tells endpoints apart (e.g. `ocds-uk`)."""

    start_url: str
    name: str = "ocds"

    def initial_cursor(self) -> Cursor:
        return {"url": self.start_url}

    def request(self, cursor: Cursor) -> PageRequest:
        return PageRequest("GET", str(cursor["url"]))

    def parse_page(self, response: PageResponse) -> Page:
        package = json_page(response)
        releases = package.get("releases")
        if not isinstance(releases, list):
            raise PollError(f"{response.url} is not an OCDS release package: it has no `releases` list")
        documents = []
        if releases:  # an empty page is how some endpoints end; it holds nothing to ingest
            documents.append(FetchedDocument(response.body, "application/json", _filename(response.url)))
        links = package.get("links")
        next_url = links.get("next") if isinstance(links, dict) else None
        if not isinstance(next_url, str) or not next_url:
            return Page(documents=documents, next_cursor={"url": response.url}, done=True)
        next_url = urljoin(response.url, next_url)
        if origin_of(next_url) != origin_of(self.start_url):
            raise PollError(f"{response.url}: links.next leaves {origin_of(self.start_url)} for {next_url}; refused")
        return Page(documents=documents, next_cursor={"url": next_url}, done=False)


def _filename(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    last = path.rsplit("/", 1)[-1] or "package"
    return last if last.endswith(".json") else f"{last}.json"
