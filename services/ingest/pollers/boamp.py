"""BOAMP (Bulletin officiel des annonces des marchés publics) from DILA's Opendatasoft portal, explore API v2.1.

What the API looks like (Opendatasoft Explore API v2.1 reference, help.opendatasoft.com/apis/ods-explore-v2/,
and public clients of the `boamp` dataset):

- `GET https://boamp-datadila.opendatasoft.com/api/explore/v2.1/catalog/datasets/boamp/records` with
  `where` (ODSQL, e.g. `dateparution >= date'2024-05-02'`), `order_by`, `limit` (at most 100) and `offset`;
  `offset + limit` may not pass 10,000.
- Answer: `{"total_count": n, "results": [record, ...]}`; a record has flat fields (`idweb`, `objet`,
  `famille`, `nature`, `dateparution` as `YYYY-MM-DD`, `code_departement`, `descripteur_code`, `type_marche`...)
  and `donnees`, the notice itself as a JSON *string*. Each record is one document for ingest.

Cursor: `{"since": "YYYY-MM-DD", "offset": k}` — every record published before `since` was read, and the first
k records of day `since` in (dateparution, idweb) order. Moving `since` forward page after page keeps the
offset small, well under the 10,000 limit. A finished run rewinds to the start of the last day it saw, so
records DILA adds to that day later are read too (those read twice are deduplicated by ingest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.ingest.pollers.source import (
    Cursor,
    FetchedDocument,
    Page,
    PageRequest,
    PageResponse,
    PollError,
    json_page,
)

RECORDS_URL = "https://boamp-datadila.opendatasoft.com/api/explore/v2.1/catalog/datasets/boamp/records"
_MAX_WINDOW = 10_000  # Opendatasoft: offset + limit <= 10000 on the records endpoint


@dataclass(frozen=True)
class BoampPoller:
    """BOAMP records published from `since` on; `where` (ODSQL) narrows them, e.g. `code_departement='31'`."""

    since: date
    where: str | None = None
    name: str = "boamp"
    page_size: int = 100
    records_url: str = RECORDS_URL

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 100:
            raise ValueError(f"Opendatasoft pages hold 1 to 100 records, not {self.page_size}")

    def initial_cursor(self) -> Cursor:
        return {"since": self.since.isoformat(), "offset": 0}

    def request(self, cursor: Cursor) -> PageRequest:
        offset = int(cursor["offset"])
        if offset + self.page_size > _MAX_WINDOW:
            raise PollError(
                f"BOAMP: more than {_MAX_WINDOW - self.page_size} records on {cursor['since']}, past what the API "
                "lets an offset reach; narrow the poller's `where`"
            )
        where = f"dateparution >= date'{cursor['since']}'"
        if self.where:
            where = f"{where} AND ({self.where})"
        params = {
            "where": where,
            "order_by": "dateparution, idweb",
            "limit": str(self.page_size),
            "offset": str(offset),
        }
        return PageRequest("GET", self.records_url, params=params)

    def parse_page(self, response: PageResponse) -> Page:
        data = json_page(response)
        records = data.get("results")
        if not isinstance(records, list):
            raise PollError(f"{response.url}: the answer has no `results` list (keys: {sorted(data)})")
        since, offset = str(response.cursor["since"]), int(response.cursor["offset"])
        documents: list[FetchedDocument] = []
        days: list[str] = []
        for record in records:
            idweb, day = _identity(record, response.url)
            days.append(day)
            body = json.dumps(record, ensure_ascii=False).encode()
            documents.append(FetchedDocument(body=body, content_type="application/json", filename=f"{idweb}.json"))
        if len(records) < self.page_size:
            return Page(documents=documents, next_cursor={"since": max([since, *days]), "offset": 0}, done=True)
        last = days[-1]
        if last == since:
            next_cursor = {"since": since, "offset": offset + len(records)}
        else:  # the records of days before `last` are all read; of day `last`, those at the end of this page
            next_cursor = {"since": last, "offset": len(days) - days.index(last)}
        return Page(documents=documents, next_cursor=next_cursor, done=False)


def _identity(record: Any, url: str) -> tuple[str, str]:
    if not isinstance(record, dict):
        raise PollError(f"{url}: a record is a JSON {type(record).__name__}, not an object")
    idweb, day = record.get("idweb"), record.get("dateparution")
    if not isinstance(idweb, str) or not isinstance(day, str):
        raise PollError(f"{url}: a record lacks `idweb` or `dateparution`; both are needed to page through BOAMP")
    try:
        return idweb, date.fromisoformat(day[:10]).isoformat()
    except ValueError:
        raise PollError(f"{url}: record {idweb} has dateparution {day!r}, not a YYYY-MM-DD date") from None
