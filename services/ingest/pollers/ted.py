"""TED (Tenders Electronic Daily) search API v3, polled in iteration mode; each notice's eForms XML is fetched.

What the API looks like (docs.ted.europa.eu/reuse/search-api.html and the API's Swagger page; request and
response shapes cross-checked against clients in public repositories):

- `POST https://api.ted.europa.eu/v3/notices/search`, JSON body: `query` (expert query, e.g.
  `buyer-country=FRA AND publication-date>=20240101 SORT BY publication-number ASC`), `fields`, `limit`
  (at most 250 per page), `paginationMode` (`PAGE_NUMBER`, capped at 15,000 results, or `ITERATION`, no cap)
  and, in iteration mode, `iterationNextToken` from the previous answer.
- Answer: `{"notices": [...], "totalNoticeCount": n, "iterationNextToken": "...", "timedOut": false}`; each
  notice has the fields asked for (`publication-number` like `"00219998-2024"`, `publication-date` like
  `"2024-04-15+02:00"`) and `links`, whose `links.xml.MUL` is the notice's XML
  (`https://ted.europa.eu/en/notice/{publication-number}/xml`).
- The API keeps giving a token on the page after the last notice, so an empty page ends the run too.

Cursor: `{"since": "YYYYMMDD", "token": str | null, "latest": "YYYYMMDD" | null}`. A finished run leaves
`since` at the latest publication day it saw and no token: the next run asks again from that day, so notices
TED adds to that day later are not missed (those read twice are deduplicated by ingest). An iteration token
is only good for a while: a run that resumes with an expired one fails with the API's 4xx; reset the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from services.ingest.pollers.source import (
    Cursor,
    DocumentLink,
    Page,
    PageRequest,
    PageResponse,
    PollError,
    json_page,
    origin_of,
)

SEARCH_URL = "https://api.ted.europa.eu/v3/notices/search"
_XML_URL = "https://ted.europa.eu/en/notice/{}/xml"
_FIELDS = ["publication-number", "publication-date"]


@dataclass(frozen=True)
class TedPoller:
    """Notices matching `query` (TED expert query) published from `since` on."""

    query: str
    since: date
    name: str = "ted"
    page_size: int = 100
    search_url: str = SEARCH_URL
    xml_origins: tuple[str, ...] = ("https://ted.europa.eu",)  # where notice XML may be downloaded from

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 250:
            raise ValueError(f"TED pages hold 1 to 250 notices, not {self.page_size}")

    def initial_cursor(self) -> Cursor:
        return {"since": self.since.strftime("%Y%m%d"), "token": None, "latest": None}

    def request(self, cursor: Cursor) -> PageRequest:
        body: dict[str, Any] = {
            "query": f"({self.query}) AND publication-date>={cursor['since']} SORT BY publication-number ASC",
            "fields": _FIELDS,
            "limit": self.page_size,
            "paginationMode": "ITERATION",
        }
        if cursor.get("token"):
            body["iterationNextToken"] = cursor["token"]
        return PageRequest("POST", self.search_url, json=body)

    def parse_page(self, response: PageResponse) -> Page:
        data = json_page(response)
        notices = data.get("notices")
        if not isinstance(notices, list):
            raise PollError(f"{response.url}: the answer has no `notices` list (keys: {sorted(data)})")
        links: list[DocumentLink] = []
        latest: str | None = response.cursor.get("latest")
        for notice in notices:
            number = _publication_number(notice, response.url)
            links.append(DocumentLink(self._xml_url(notice, number), "application/xml", f"{number}.xml"))
            day = _publication_day(notice)
            if day and (latest is None or day > latest):
                latest = day
        token = data.get("iterationNextToken")
        if not notices or not token:
            since = max(str(response.cursor["since"]), latest or "")
            return Page(
                documents=[], links=links, done=True, next_cursor={"since": since, "token": None, "latest": None}
            )
        next_cursor = {"since": response.cursor["since"], "token": str(token), "latest": latest}
        return Page(documents=[], links=links, done=False, next_cursor=next_cursor)

    def _xml_url(self, notice: dict[str, Any], number: str) -> str:
        url = (notice.get("links") or {}).get("xml", {}).get("MUL") or _XML_URL.format(number)
        if origin_of(url) not in self.xml_origins:
            raise PollError(f"TED notice {number} links its XML at {url}, outside {', '.join(self.xml_origins)}")
        return str(url)


def _publication_number(notice: Any, url: str) -> str:
    number = notice.get("publication-number") if isinstance(notice, dict) else None
    if isinstance(number, list) and number:  # some fields come as one-element lists
        number = number[0]
    if not isinstance(number, str) or not number:
        raise PollError(f"{url}: a notice has no publication-number; ask for that field in `fields`")
    return number


def _publication_day(notice: dict[str, Any]) -> str | None:
    value = notice.get("publication-date")
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10]).strftime("%Y%m%d")  # "2024-04-15+02:00": the day is what counts
    except ValueError:
        return None
