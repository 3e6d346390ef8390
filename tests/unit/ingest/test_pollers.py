"""Pollers against a real local HTTP server replaying pages built from real documents (tests/fixtures)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.ingest.pollers import (
    BoampPoller,
    FakeCursorStore,
    FetchPolicy,
    OcdsPoller,
    PageResponse,
    PollError,
    PollReport,
    TedPoller,
    poll,
)
from services.ingest.sources import DocumentError, parse_document

FIXTURES = Path(__file__).parents[2] / "fixtures"
TED_XML = FIXTURES / "eforms" / "ted"
OCDS = FIXTURES / "pollers" / "ocds"
BOAMP_RECORDS = json.loads((FIXTURES / "pollers" / "boamp" / "records.json").read_text(encoding="utf-8"))
TED_NUMBERS = ["00041387-2024", "00047522-2024", "00129266-2024", "00191534-2024", "00219998-2024"]
OCDS_RELEASES = sorted(OCDS.glob("*.json"))

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: bytes


@dataclass
class Replay:
    """A route table of the local server, with one-shot failures served before a route's normal answer."""

    routes: dict[str, Callable[[Seen], Reply]] = field(default_factory=dict)
    failures: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    base: str = ""

    def answer(self, request: Seen) -> Reply:
        self.seen.append(request)
        queued = self.failures.get(request.path)
        if queued:
            return queued.pop(0)
        route = self.routes.get(request.path)
        if route is None:
            return 404, {"Content-Type": "text/plain"}, b"no such recorded page"
        return route(request)

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


@pytest.fixture
def server() -> Iterator[Replay]:
    replay = Replay()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            status, headers, body = replay.answer(Seen(self.command, parts.path, query, self.rfile.read(length)))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = _serve  # noqa: N815 - the names http.server dispatches to
        do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    replay.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield replay
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _always(reply: Reply) -> Callable[[Seen], Reply]:
    return lambda _request: reply


def _json(value: object, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(value).encode()


@dataclass
class Sink:
    """Stands in for Ingest.accept (real parser) and the dead-letter callback."""

    accepted: list[tuple[str, str | None, str]] = field(default_factory=list)
    rejected: list[tuple[bytes, DocumentError]] = field(default_factory=list)
    parse: bool = True

    async def accept(
        self, body: bytes, *, content_type: str | None, filename: str | None, origin: str
    ) -> Sequence[object]:
        notices = parse_document(body, content_type=content_type, filename=filename) if self.parse else [body]
        self.accepted.append((filename or "", content_type, origin))
        return notices

    async def on_rejected(self, body: bytes, error: DocumentError) -> None:
        self.rejected.append((body, error))


class Clock:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def policy(self, **overrides: object) -> FetchPolicy:
        options: dict[str, object] = {
            "attempts": 3,
            "backoff_base": 2.0,
            "sleep": self.sleep,
            "now": lambda: datetime(2024, 5, 2, 12, 0, 0, tzinfo=UTC),
            "jitter": lambda: 1.0,
        }
        options.update(overrides)
        return FetchPolicy(**options)  # type: ignore[arg-type]


# --- TED -----------------------------------------------------------------------------------------------------


def _ted_server(server: Replay, pages: list[list[str]], *, xml_overrides: dict[str, bytes] | None = None) -> None:
    """Search pages in iteration mode (token "t1", "t2", ...); the page after the last is empty, as TED does."""

    def search(request: Seen) -> Reply:
        token = json.loads(request.body).get("iterationNextToken")
        index = 0 if token is None else int(token[1:])
        numbers = pages[index] if index < len(pages) else []
        notices = [
            {
                "publication-number": number,
                "publication-date": f"2024-0{index + 3}-1{i}+01:00",
                "links": {"xml": {"MUL": f"{server.base}/en/notice/{number}/xml"}},
            }
            for i, number in enumerate(numbers)
        ]
        return _json({"notices": notices, "totalNoticeCount": 5, "iterationNextToken": f"t{index + 1}"})

    server.routes["/v3/notices/search"] = search
    for number in TED_NUMBERS:
        serial, year = number.split("-")
        body = (TED_XML / f"{year}-OJS{_OJS[number]}-{serial}.xml").read_bytes()
        body = (xml_overrides or {}).get(number, body)
        server.routes[f"/en/notice/{number}/xml"] = _always((200, {"Content-Type": "application/xml"}, body))


_OJS = {
    "00041387-2024": "015",
    "00047522-2024": "017",
    "00129266-2024": "044",
    "00191534-2024": "065",
    "00219998-2024": "074",
}


def _ted(server: Replay, page_size: int = 3) -> TedPoller:
    return TedPoller(
        query="buyer-country=FRA",
        since=date(2024, 1, 1),
        page_size=page_size,
        search_url=f"{server.base}/v3/notices/search",
        xml_origins=(server.base,),
    )


async def test_ted_pages_to_the_end_and_fetches_each_notice_xml(server: Replay) -> None:
    _ted_server(server, [TED_NUMBERS[:3], TED_NUMBERS[3:]])
    sink, cursors, clock = Sink(), FakeCursorStore(), Clock()
    async with httpx.AsyncClient() as client:
        report = await poll(
            _ted(server), client=client, cursors=cursors, accept=sink.accept, on_rejected=sink.on_rejected,
            policy=clock.policy(),
        )  # fmt: skip

    assert (report.pages, report.documents, report.notices, report.rejected, report.done) == (3, 5, 5, 0, True)
    assert [a[0] for a in sink.accepted] == [f"{n}.xml" for n in TED_NUMBERS]
    assert {a[1:] for a in sink.accepted} == {("application/xml", "ted")}
    searches = [json.loads(s.body) for s in server.seen if s.path == "/v3/notices/search"]
    assert [s.get("iterationNextToken") for s in searches] == [None, "t1", "t2"]
    assert searches[0] == {
        "query": "(buyer-country=FRA) AND publication-date>=20240101 SORT BY publication-number ASC",
        "fields": ["publication-number", "publication-date"],
        "limit": 3,
        "paginationMode": "ITERATION",
    }
    # finished: the next run asks again from the latest publication day seen, without a token
    assert cursors.cursors["ted"] == {"since": "20240411", "token": None, "latest": None}
    assert cursors.saved[0] == ("ted", {"since": "20240101", "token": "t1", "latest": "20240312"})
    assert clock.sleeps == []


async def test_a_bad_document_is_dead_lettered_and_the_poll_goes_on(server: Replay) -> None:
    _ted_server(server, [TED_NUMBERS[:3], TED_NUMBERS[3:]], xml_overrides={"00047522-2024": b"<notice><broken"})
    sink, cursors = Sink(), FakeCursorStore()
    async with httpx.AsyncClient() as client:
        report = await poll(
            _ted(server), client=client, cursors=cursors, accept=sink.accept, on_rejected=sink.on_rejected,
            policy=Clock().policy(),
        )  # fmt: skip

    assert (report.documents, report.rejected, report.done) == (4, 1, True)
    assert [(body, error.reason) for body, error in sink.rejected] == [(b"<notice><broken", "malformed-xml")]
    assert "00219998-2024.xml" in [a[0] for a in sink.accepted]  # documents after the bad one still ingested


async def test_429_waits_what_retry_after_says_then_reads_the_same_page(server: Replay) -> None:
    _ted_server(server, [TED_NUMBERS[:3], TED_NUMBERS[3:]])
    server.failures["/v3/notices/search"] = [(429, {"Retry-After": "7"}, b"slow down")]
    sink, clock = Sink(), Clock()
    async with httpx.AsyncClient() as client:
        report = await poll(
            _ted(server), client=client, cursors=FakeCursorStore(), accept=sink.accept, on_rejected=sink.on_rejected,
            policy=clock.policy(),
        )  # fmt: skip

    assert clock.sleeps == [7.0]
    assert report.documents == 5
    assert server.paths()[:2] == ["/v3/notices/search", "/v3/notices/search"]
    assert server.seen[0].body == server.seen[1].body  # the same page asked again


async def test_retry_after_as_an_http_date_and_capped(server: Replay) -> None:
    _ted_server(server, [TED_NUMBERS[:1]])
    server.failures["/v3/notices/search"] = [
        (503, {"Retry-After": "Thu, 02 May 2024 12:00:30 GMT"}, b""),
        (429, {"Retry-After": "86400"}, b""),
    ]
    sink, clock = Sink(), Clock()
    async with httpx.AsyncClient() as client:
        await poll(
            _ted(server), client=client, cursors=FakeCursorStore(), accept=sink.accept, on_rejected=sink.on_rejected,
            policy=clock.policy(retry_after_max=120.0),
        )  # fmt: skip
    assert clock.sleeps == [30.0, 120.0]


async def test_503_without_retry_after_backs_off_exponentially(server: Replay) -> None:
    _ted_server(server, [TED_NUMBERS[:1]])
    server.failures["/v3/notices/search"] = [(503, {}, b"down"), (502, {}, b"down")]
    server.failures["/en/notice/00041387-2024/xml"] = [(500, {}, b"oops")]
    sink, clock = Sink(), Clock()
    async with httpx.AsyncClient() as client:
        report = await poll(
            _ted(server), client=client, cursors=FakeCursorStore(), accept=sink.accept, on_rejected=sink.on_rejected,
            policy=clock.policy(attempts=4, jitter=lambda: 0.0),
        )  # fmt: skip
    # jitter 0 waits half the ceiling (2 s, then 4 s): 1 s and 2 s for the page, 1 s for the document
    assert clock.sleeps == [1.0, 2.0, 1.0]
    assert report.documents == 1


async def test_a_page_that_keeps_failing_stops_the_run_without_moving_the_cursor(server: Replay) -> None:
    _ted_server(server, [TED_NUMBERS[:3], TED_NUMBERS[3:]])
    stored = {"since": "20240101", "token": "t1", "latest": "20240312"}
    cursors, sink, clock = FakeCursorStore({"ted": stored}), Sink(), Clock()
    server.failures["/v3/notices/search"] = [(503, {}, b"down")] * 3
    async with httpx.AsyncClient() as client:
        with pytest.raises(PollError, match=r"failed 3 times \(last: HTTP 503: down\)"):
            await poll(
                _ted(server), client=client, cursors=cursors, accept=sink.accept, on_rejected=sink.on_rejected,
                policy=clock.policy(),
            )  # fmt: skip
    assert cursors.cursors["ted"] == stored
    assert cursors.saved == []
    assert len(clock.sleeps) == 2
    assert sink.accepted == []


async def test_a_document_that_keeps_failing_stops_the_run_before_its_page_is_committed(server: Replay) -> None:
    _ted_server(server, [TED_NUMBERS[:3], TED_NUMBERS[3:]])
    server.failures["/en/notice/00129266-2024/xml"] = [(503, {}, b"")] * 3
    cursors, sink = FakeCursorStore(), Sink()
    async with httpx.AsyncClient() as client:
        with pytest.raises(PollError):
            await poll(
                _ted(server), client=client, cursors=cursors, accept=sink.accept, on_rejected=sink.on_rejected,
                policy=Clock().policy(),
            )  # fmt: skip
    assert cursors.saved == []
    assert sink.accepted == []  # the page's documents are fetched first, then handed over


async def test_a_client_error_is_not_retried(server: Replay) -> None:
    server.routes["/v3/notices/search"] = lambda _r: _json({"message": "QUERY_SYNTAX_ERROR"}, status=400)
    clock = Clock()
    async with httpx.AsyncClient() as client:
        with pytest.raises(PollError, match=r"answered HTTP 400.*QUERY_SYNTAX_ERROR.*not retried"):
            await poll(
                _ted(server), client=client, cursors=FakeCursorStore(), accept=Sink().accept,
                on_rejected=Sink().on_rejected, policy=clock.policy(),
            )  # fmt: skip
    assert clock.sleeps == []
    assert len(server.seen) == 1


async def test_redirect_to_another_host_is_refused(server: Replay) -> None:
    server.routes["/v3/notices/search"] = lambda _r: (307, {"Location": "http://example.org/v3/notices/search"}, b"")
    async with httpx.AsyncClient() as client:
        with pytest.raises(PollError, match="redirects to another host"):
            await poll(
                _ted(server), client=client, cursors=FakeCursorStore(), accept=Sink().accept,
                on_rejected=Sink().on_rejected, policy=Clock().policy(),
            )  # fmt: skip


async def test_an_oversized_document_is_dead_lettered_and_an_oversized_page_stops_the_run(server: Replay) -> None:
    _ted_server(server, [TED_NUMBERS[:2]])
    sink = Sink()
    async with httpx.AsyncClient() as client:
        report = await poll(
            _ted(server), client=client, cursors=FakeCursorStore(), accept=sink.accept, on_rejected=sink.on_rejected,
            policy=Clock().policy(max_document_bytes=20_000),
        )  # fmt: skip
        assert (report.documents, report.rejected) == (1, 1)  # 00041387 is 16.5 kB, 00047522 is 32 kB
        assert sink.rejected[0][1].reason == "too-large"
        assert "00047522-2024/xml" in sink.rejected[0][1].message
        with pytest.raises(PollError, match="over the limit of 100 bytes"):
            await poll(
                _ted(server), client=client, cursors=FakeCursorStore(), accept=sink.accept,
                on_rejected=sink.on_rejected, policy=Clock().policy(max_page_bytes=100),
            )  # fmt: skip


def test_ted_refuses_xml_links_outside_its_origins() -> None:
    poller = TedPoller(query="buyer-country=FRA", since=date(2024, 1, 1))
    page = {"notices": [{"publication-number": "1-2024", "links": {"xml": {"MUL": "https://evil.example/x"}}}]}
    with pytest.raises(PollError, match=r"outside https://ted\.europa\.eu"):
        poller.parse_page(PageResponse(poller.initial_cursor(), poller.search_url, json.dumps(page).encode()))


def test_ted_builds_the_xml_link_when_the_answer_has_none() -> None:
    poller = TedPoller(query="buyer-country=FRA", since=date(2024, 1, 1))
    body = json.dumps({"notices": [{"publication-number": ["219998-2024"]}], "iterationNextToken": "x"}).encode()
    page = poller.parse_page(PageResponse(poller.initial_cursor(), poller.search_url, body))
    assert [(link.url, link.filename) for link in page.links] == [
        ("https://ted.europa.eu/en/notice/219998-2024/xml", "219998-2024.xml")
    ]
    assert page.next_cursor == {"since": "20240101", "token": "x", "latest": None}
    assert not page.done


# --- OCDS ----------------------------------------------------------------------------------------------------


def _ocds_server(server: Replay) -> None:
    """Contracts Finder style: each page a release package whose links.next carries a cursor."""
    for index, path in enumerate(OCDS_RELEASES):
        release = json.loads(path.read_bytes())
        package = {
            "uri": f"{server.base}/ocds/search?cursor={index}",
            "publishedDate": release["date"],
            "publisher": release["packageInfo"]["publisher"],
            "version": "1.1",
            "releases": [release],
            "links": {"next": f"/ocds/page-{index + 1}.json"} if index + 1 < len(OCDS_RELEASES) else {},
        }
        server.routes[f"/ocds/page-{index}.json"] = _always(_json(package))


async def test_ocds_follows_links_next_and_resumes_after_a_restart(server: Replay) -> None:
    _ocds_server(server)
    cursors, sink = FakeCursorStore(), Sink(parse=False)
    async with httpx.AsyncClient() as client:
        first = await poll(
            OcdsPoller(start_url=f"{server.base}/ocds/page-0.json", name="ocds-uk"), client=client, cursors=cursors,
            accept=sink.accept, on_rejected=sink.on_rejected, max_pages=1, policy=Clock().policy(),
        )  # fmt: skip
        assert (first.pages, first.documents, first.done) == (1, 1, False)
        assert cursors.cursors["ocds-uk"] == {"url": f"{server.base}/ocds/page-1.json"}

        # a new poller object, as after a restart, with the same store: only the rest is read
        server.seen.clear()
        second = await poll(
            OcdsPoller(start_url=f"{server.base}/ocds/page-0.json", name="ocds-uk"), client=client, cursors=cursors,
            accept=sink.accept, on_rejected=sink.on_rejected, policy=Clock().policy(),
        )  # fmt: skip
    assert server.paths() == ["/ocds/page-1.json", "/ocds/page-2.json"]
    assert (second.pages, second.documents, second.done) == (2, 2, True)
    assert [a[0] for a in sink.accepted] == ["page-0.json", "page-1.json", "page-2.json"]
    assert {a[1:] for a in sink.accepted} == {("application/json", "ocds-uk")}
    assert cursors.cursors["ocds-uk"] == {"url": f"{server.base}/ocds/page-2.json"}  # re-read next time


async def test_ocds_pages_carry_the_real_releases(server: Replay) -> None:
    _ocds_server(server)
    bodies: list[bytes] = []

    async def accept(body: bytes, *, content_type: str | None, filename: str | None, origin: str) -> list[object]:
        bodies.append(body)
        return [body]

    async with httpx.AsyncClient() as client:
        report = await poll(
            OcdsPoller(start_url=f"{server.base}/ocds/page-0.json"), client=client, cursors=FakeCursorStore(),
            accept=accept, on_rejected=Sink().on_rejected, policy=Clock().policy(),
        )  # fmt: skip
    titles = [json.loads(b)["releases"][0]["tender"]["title"].strip() for b in bodies]
    assert titles == [
        "Climate Science for Service Partnership (CSSP): Calls for Expressions of Interest",
        "STANDING LIST OF CONSTRUCTION CONTRACTORS AND SUB-CONTRACTORS",
        "Wellbeing College",
    ]
    assert report.notices == 3


def test_ocds_refuses_a_next_link_to_another_host() -> None:
    poller = OcdsPoller(start_url="https://www.contractsfinder.service.gov.uk/Published/Notices/OCDS/Search")
    body = json.dumps({"releases": [], "links": {"next": "https://elsewhere.example/page2"}}).encode()
    with pytest.raises(PollError, match=r"links\.next leaves"):
        poller.parse_page(PageResponse(poller.initial_cursor(), poller.start_url, body))


def test_ocds_refuses_what_is_not_a_release_package() -> None:
    poller = OcdsPoller(start_url="https://example.org/releases")
    with pytest.raises(PollError, match="not an OCDS release package"):
        poller.parse_page(PageResponse(poller.initial_cursor(), poller.start_url, b'{"records": []}'))
    with pytest.raises(PollError, match="did not answer JSON"):
        poller.parse_page(PageResponse(poller.initial_cursor(), poller.start_url, b"<html>maintenance</html>"))


# --- BOAMP ---------------------------------------------------------------------------------------------------


def _boamp_server(server: Replay) -> None:
    """A tiny Opendatasoft: `where dateparution >= date'...'`, ordered by (dateparution, idweb), limit/offset."""

    def records(request: Seen) -> Reply:
        where = request.query["where"]
        assert request.query["order_by"] == "dateparution, idweb"
        since = where.split("date'")[1][:10]
        matching = [r for r in BOAMP_RECORDS if r["dateparution"] >= since]
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        return _json({"total_count": len(matching), "results": matching[offset : offset + limit]})

    server.routes["/api/explore/v2.1/catalog/datasets/boamp/records"] = records


async def test_boamp_pages_by_publication_day_and_offset(server: Replay) -> None:
    _boamp_server(server)
    cursors, bodies = FakeCursorStore(), []

    async def accept(body: bytes, *, content_type: str | None, filename: str | None, origin: str) -> list[object]:
        bodies.append((json.loads(body), content_type, filename, origin))
        return [body]

    poller = BoampPoller(
        since=date(2016, 1, 1),
        page_size=2,
        records_url=f"{server.base}/api/explore/v2.1/catalog/datasets/boamp/records",
    )
    async with httpx.AsyncClient() as client:
        report = await poll(
            poller, client=client, cursors=cursors, accept=accept, on_rejected=Sink().on_rejected,
            policy=Clock().policy(),
        )  # fmt: skip

    assert [b[0]["idweb"] for b in bodies] == ["16-652", "16-181902", "16-186394", "17-1028", "16-138580"]
    assert {(b[1], b[3]) for b in bodies} == {("application/json", "boamp")}
    assert [b[2] for b in bodies] == [
        "16-652.json",
        "16-181902.json",
        "16-186394.json",
        "17-1028.json",
        "16-138580.json",
    ]
    assert [(s.query["where"], s.query["offset"]) for s in server.seen] == [
        ("dateparution >= date'2016-01-01'", "0"),
        ("dateparution >= date'2017-01-01'", "1"),
        ("dateparution >= date'2017-01-04'", "1"),
    ]
    assert [c for _, c in cursors.saved] == [
        {"since": "2017-01-01", "offset": 1},
        {"since": "2017-01-04", "offset": 1},
        {"since": "2017-02-14", "offset": 0},  # finished: the last day is read again next time
    ]
    assert (report.pages, report.documents, report.done) == (3, 5, True)
    donnees = json.loads(bodies[0][0]["donnees"])
    assert donnees["OBJET"]["OBJET_COMPLET"].startswith("DAMR 2016/01 PRESTATION D'INTERIM MEDICAL")


def test_boamp_cursor_stays_on_a_day_longer_than_a_page() -> None:
    poller = BoampPoller(since=date(2024, 5, 2), page_size=2, where="code_departement='31'")
    page = {
        "results": [{"idweb": "24-1", "dateparution": "2024-05-02"}, {"idweb": "24-2", "dateparution": "2024-05-02"}]
    }
    cursor = {"since": "2024-05-02", "offset": 4}
    result = poller.parse_page(PageResponse(cursor, poller.records_url, json.dumps(page).encode()))
    assert result.next_cursor == {"since": "2024-05-02", "offset": 6}
    assert not result.done
    assert poller.request(cursor).params == {
        "where": "dateparution >= date'2024-05-02' AND (code_departement='31')",
        "order_by": "dateparution, idweb",
        "limit": "2",
        "offset": "4",
    }


def test_boamp_refuses_an_offset_past_the_api_window() -> None:
    poller = BoampPoller(since=date(2024, 5, 2))
    with pytest.raises(PollError, match="narrow the poller's `where`"):
        poller.request({"since": "2024-05-02", "offset": 9_950})


async def test_progress_is_reported_after_each_page(server: Replay) -> None:
    _boamp_server(server)
    reports: list[PollReport] = []
    poller = BoampPoller(
        since=date(2016, 1, 1),
        page_size=2,
        records_url=f"{server.base}/api/explore/v2.1/catalog/datasets/boamp/records",
    )
    async with httpx.AsyncClient() as client:
        await poll(
            poller, client=client, cursors=FakeCursorStore(), accept=Sink(parse=False).accept,
            on_rejected=Sink().on_rejected, progress=reports.append, policy=Clock().policy(),
        )  # fmt: skip
    assert [(r.pages, r.documents, r.done) for r in reports] == [(1, 2, False), (2, 4, False), (3, 5, True)]
