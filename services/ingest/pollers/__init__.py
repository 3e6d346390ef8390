"""Pollers of the public procurement APIs: TED search v3, BOAMP (Opendatasoft) and OCDS release packages.

`poll(source, ...)` reads one source from its stored cursor to the end, giving each document to ingest;
the cursor lives in PostgreSQL (`CursorStore`) and moves only past pages fully handled.
"""

from services.ingest.pollers._http import FetchPolicy
from services.ingest.pollers.boamp import BoampPoller
from services.ingest.pollers.cursors import CursorStorage, CursorStore, FakeCursorStore
from services.ingest.pollers.ocds import OcdsPoller
from services.ingest.pollers.poll import Accept, OnRejected, PollReport, poll
from services.ingest.pollers.source import (
    Cursor,
    DocumentLink,
    FetchedDocument,
    Page,
    PageRequest,
    PageResponse,
    PollError,
    PollSource,
)
from services.ingest.pollers.ted import TedPoller

__all__ = [
    "Accept",
    "BoampPoller",
    "Cursor",
    "CursorStorage",
    "CursorStore",
    "DocumentLink",
    "FakeCursorStore",
    "FetchPolicy",
    "FetchedDocument",
    "OcdsPoller",
    "OnRejected",
    "Page",
    "PageRequest",
    "PageResponse",
    "PollError",
    "PollReport",
    "PollSource",
    "TedPoller",
    "poll",
]
