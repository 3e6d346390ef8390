"""`POST /v1/subscriptions/preview` and filter validation on the real database, with real classified notices.

The notices are real fixtures taken through the ingest parsers and the classifier, re-dated into the last weeks,
and stored with the API's own read-model insert (not through `notices.classified`: the end-to-end tests' matcher
shares the broker and would alert on them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from schemas import ClassifiedNotice, SubscriptionFilters
from schemas.filtering.rules import CompiledFilters, subscription_matches
from services.api.app import Api, _selection
from services.classifier.classify import Classifier
from services.ingest.sources import parse_document
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = datetime.now(UTC).replace(microsecond=0)

# fixture file -> (days since publication, days from publication to the deadline); the plan line has no dates.
_DATED = {
    "eforms/ted/2024-OJS044-00128154.xml": (1, 35),  # car leasing, Poland
    "eforms/ted/2024-OJS017-00047522.xml": (2, 10),  # glass and paper collection, Gard (30)
    "eforms/ted/2024-OJS074-00219998.xml": (3, 35),  # waste disposal site, Guadeloupe (971)
    "eforms/ted/2024-OJS015-00041387.xml": (5, 35),  # design contest, Haute-Vienne (87), CPV 71000000
    "eforms/ted/2024-OJS044-00129266.xml": (8, 35),  # design services, Pas-de-Calais (62), CPV 71200000
    "boamp/xml-v230/test-pub-2.xml": (12, 35),  # design of a bridge, Bouches-du-Rhône (13), CPV 71240000
    "boamp/xml-v230/test-pub.xml": (20, 25),  # towing, Paris and its suburbs
    "boamp/xml-v230/test-attribution-10.xml": (40, 0),  # award, Seine-Maritime (76): outside 30 days
}
_PLAN = "purchase-plans/plan-de-charge-exemple.csv"  # its first line: roofing, Hérault (34), no publication date


@dataclass
class PreviewStack:
    client: httpx.AsyncClient
    api: Api
    key: str
    other_key: str
    notices: dict[str, ClassifiedNotice]  # by fixture file

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {key or self.key}"}

    async def preview(self, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        response = await self.client.post("/v1/subscriptions/preview", json=body, headers=self.auth(key))
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def ids(self, *files: str) -> list[str]:
        return [self.notices[file].notice_id for file in files]


def _classified_fixtures() -> dict[str, ClassifiedNotice]:
    classifier = Classifier.load()
    notices: dict[str, ClassifiedNotice] = {}
    for file, (age, deadline_after) in _DATED.items():
        path = FIXTURES / file
        (notice,) = parse_document(path.read_bytes(), filename=path.name)
        published = NOW - timedelta(days=age)
        deadline = published + timedelta(days=deadline_after) if notice.deadline is not None else None
        dated = notice.model_copy(update={"published_at": published, "deadline": deadline})
        notices[file] = classifier.classify(dated, now=published)
    plan = FIXTURES / _PLAN
    notices[_PLAN] = classifier.classify(parse_document(plan.read_bytes(), filename=plan.name)[0], now=NOW)
    return notices


@pytest_asyncio.fixture(scope="module")
async def stack(stack_env: dict[str, str], integration_database: str) -> AsyncIterator[PreviewStack]:
    settings = Settings(
        kafka_bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_enable_idempotence=stack_env["KAFKA_ENABLE_IDEMPOTENCE"] == "true",
        database_url=integration_database,
        processing_attempts=3,
    )
    api = Api(settings)
    notices = _classified_fixtures()
    async with api.runtime.lifespan():
        for notice in notices.values():
            await api.store_notice(notice)
        transport = httpx.ASGITransport(app=api.asgi())
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            keys = []
            for name in ("Dupont Voirie", "Martin Nettoyage"):
                created = await client.post("/v1/accounts", json={"name": name, "email": "contact@dupont.example"})
                keys.append(created.json()["api_key"])
            yield PreviewStack(client, api, keys[0], keys[1], notices)


async def test_a_department_filter_counts_and_shows_the_matching_notices_most_recent_first(stack: PreviewStack) -> None:
    answer = await stack.preview({"filters": {"departments": ["30", "971"]}})
    glass, waste = (
        stack.notices["eforms/ted/2024-OJS017-00047522.xml"],
        stack.notices["eforms/ted/2024-OJS074-00219998.xml"],
    )
    assert {key: answer[key] for key in ("days", "notices_considered", "matches")} == {
        "days": 30,
        "notices_considered": 8,  # the award published 40 days ago is outside the window
        "matches": 2,
    }
    assert answer["sample"] == [
        {
            "notice_id": glass.notice_id,
            "title": "Prestations de collecte des colonnes de verre et de papier pour la Communauté de Communes du "
            "Piémont Cévenol et transport vers les centres de traitement",
            "buyer_name": "Communauté de Communes du Piémont Cévenol",
            "kind": "competition",
            "published_at": (NOW - timedelta(days=2)).isoformat(),
            "deadline": (NOW + timedelta(days=8)).isoformat(),
            "departments": ["30"],
            "reasons": [{"criterion": "department", "values": ["30"], "notice_values": ["30"]}],
        },
        {
            "notice_id": waste.notice_id,
            "title": "Gestion et Exploitation de la déchetterie intercommunale de Trioncelle Baie-Mahault",
            "buyer_name": "Communauté d'agglomération CAP Excellence",
            "kind": "competition",
            "published_at": (NOW - timedelta(days=3)).isoformat(),
            "deadline": (NOW + timedelta(days=32)).isoformat(),
            "departments": ["971"],
            "reasons": [{"criterion": "department", "values": ["971"], "notice_values": ["971"]}],
        },
    ]


async def test_a_cpv_code_covers_the_codes_under_it(stack: PreviewStack) -> None:
    division = await stack.preview({"filters": {"cpv": ["71000000"]}})
    design = (
        "eforms/ted/2024-OJS015-00041387.xml",
        "eforms/ted/2024-OJS044-00129266.xml",
        "boamp/xml-v230/test-pub-2.xml",
    )
    assert division["matches"] == 3
    assert [item["notice_id"] for item in division["sample"]] == stack.ids(*design)
    assert [item["reasons"] for item in division["sample"]] == [
        [{"criterion": "cpv", "values": ["71000000"], "notice_values": [code]}]
        for code in ("71000000", "71200000", "71240000")
    ]
    group = await stack.preview({"filters": {"cpv": ["71200000"]}})
    assert [item["notice_id"] for item in group["sample"]] == stack.ids(*design[1:])


async def test_a_keyword_query_matches_accents_ligatures_and_elisions_aside(stack: PreviewStack) -> None:
    phrase = await stack.preview({"filters": {"keywords": {"query": '"maîtrise d\'œuvre"', "title_only": True}}})
    assert [item["notice_id"] for item in phrase["sample"]] == stack.ids(
        "eforms/ted/2024-OJS015-00041387.xml", "eforms/ted/2024-OJS044-00129266.xml", "boamp/xml-v230/test-pub-2.xml"
    )
    assert phrase["sample"][0]["reasons"][0]["criterion"] == "keywords"
    narrowed = await stack.preview(
        {"filters": {"keywords": '"maitrise d\'oeuvre" -lycée', "departments": ["13", "87"]}}
    )
    assert [item["notice_id"] for item in narrowed["sample"]] == stack.ids("boamp/xml-v230/test-pub-2.xml")
    assert [reason["criterion"] for reason in narrowed["sample"][0]["reasons"]] == ["department", "keywords"]


async def test_filters_that_match_nothing_give_an_empty_sample(stack: PreviewStack) -> None:
    answer = await stack.preview({"filters": {"departments": ["2A"]}})
    assert (answer["notices_considered"], answer["matches"], answer["sample"]) == (8, 0, [])
    nothing = await stack.preview({"filters": {"keywords": "skatepark"}})
    assert (nothing["matches"], nothing["sample"]) == (0, [])


async def test_the_window_follows_days_and_a_notice_without_a_date_counts_from_its_arrival(
    stack: PreviewStack,
) -> None:
    recent = await stack.preview({"filters": {"kinds": ["result"]}, "days": 30})
    assert (recent["notices_considered"], recent["matches"]) == (8, 0)
    year = await stack.preview({"filters": {"kinds": ["result"]}, "days": 365})
    assert (year["notices_considered"], year["matches"]) == (9, 1)
    assert [item["notice_id"] for item in year["sample"]] == stack.ids("boamp/xml-v230/test-attribution-10.xml")
    everything = await stack.preview({"filters": {}, "sample": 2})
    assert (everything["notices_considered"], everything["matches"]) == (8, 8)
    plan, cars = stack.notices[_PLAN], stack.notices["eforms/ted/2024-OJS044-00128154.xml"]
    assert [item["notice_id"] for item in everything["sample"]] == [plan.notice_id, cars.notice_id]
    assert everything["sample"][0]["published_at"] is None
    assert everything["sample"][0]["reasons"] == [{"criterion": "everything", "values": [], "notice_values": []}]
    none_shown = await stack.preview({"filters": {}, "sample": 0})
    assert (none_shown["matches"], none_shown["sample"]) == (8, [])


async def test_days_left_are_counted_from_when_each_notice_was_published(
    stack: PreviewStack, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await stack.preview({"filters": {"min_days_left": 15, "kinds": ["competition"]}})
    assert "disagree" not in caplog.text  # SQL counted them as the rules do
    # The towing notice had 25 days left when published (5 now); the glass collection had 10.
    assert [item["notice_id"] for item in answer["sample"]] == stack.ids(
        "eforms/ted/2024-OJS044-00128154.xml",
        "eforms/ted/2024-OJS074-00219998.xml",
        "eforms/ted/2024-OJS015-00041387.xml",
        "eforms/ted/2024-OJS044-00129266.xml",
        "boamp/xml-v230/test-pub-2.xml",
        "boamp/xml-v230/test-pub.xml",
    )
    # Exactly 25 days left when published is enough for 25, not for 26.
    (towing,) = stack.ids("boamp/xml-v230/test-pub.xml")
    for days, towing_shown in ((25, True), (26, False)):
        shown = await stack.preview({"filters": {"min_days_left": days, "kinds": ["competition"]}})
        assert (towing in {item["notice_id"] for item in shown["sample"]}) is towing_shown


@pytest.mark.parametrize(
    "filters",
    [
        {"regions": ["11", "76"]},
        {"sectors": ["maitrise-oeuvre", "eau-dechets-environnement"]},
        {"cpv": ["90000000", "45261000"], "kinds": ["competition", "planning"]},
        {"countries": ["PL"]},
        {"procedure_types": ["restricted"], "departments": ["87", "62", "13"]},
        {"keywords": "collecte OR remorquage OR toiture", "sectors": ["nettoyage", "transport", "batiment"]},
        {"keywords": "(déchetterie OR collecte) -papier"},
        {"keywords": "(conception OR maîtrise) -lycée", "kinds": ["competition"]},
        {"keywords": {"query": "maîtrise OR remorquage", "title_only": True}},
        {"keywords": '"maîtrise d\'œuvre" OR remorquage'},
        {"keywords": "services", "cpv": ["71000000"], "value_max": 1000000},
        {},
        {"reserved": False, "kinds": ["competition"], "procedure_types": ["open"]},
        {"value_min": 100000, "without_value": "exclude"},
        {"value_max": 500000},
        {"countries": ["FR"], "value_max": 1000000, "without_value": "exclude"},
        {"buyer_categories": ["municipality", "other-public"]},
        {"buyers": ["20003441100013", "Ville de Paris"]},
    ],
)
async def test_the_preview_agrees_with_the_matchers_verdict_on_every_stored_notice(
    stack: PreviewStack, filters: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    answer = await stack.preview({"filters": filters, "sample": 50})
    assert "disagree" not in caplog.text  # where SQL counts alone, it counted what the matching rules match
    parsed = SubscriptionFilters.model_validate(filters)
    in_window = [file for file in stack.notices if file != "boamp/xml-v230/test-attribution-10.xml"]
    expected = [
        stack.notices[file].notice_id
        for file in in_window
        if subscription_matches(parsed, stack.notices[file], now=NOW) is not None
    ]
    assert expected, "choose filters that match something"
    assert sorted(item["notice_id"] for item in answer["sample"]) == sorted(expected)
    assert answer["matches"] == len(expected)


async def test_a_notice_stored_before_cpv_prefixes_were_kept_still_matches_a_cpv_filter(stack: PreviewStack) -> None:
    design = stack.notices["boamp/xml-v230/test-pub-2.xml"]
    pool = stack.api.runtime.pool
    kept = await pool.fetchval("SELECT cpv_prefixes FROM notices WHERE notice_id = $1", design.notice_id)
    assert "7124" in kept
    await pool.execute(
        "UPDATE notices SET cpv_prefixes = NULL, matching_columns = NULL WHERE notice_id = $1", design.notice_id
    )
    try:
        answer = await stack.preview({"filters": {"cpv": ["71240000"]}})
    finally:
        await pool.execute(
            "UPDATE notices SET cpv_prefixes = $2, matching_columns = true WHERE notice_id = $1", design.notice_id, kept
        )
    assert [item["notice_id"] for item in answer["sample"]] == [design.notice_id]


async def test_a_keyword_preview_reads_only_the_notices_with_one_of_its_necessary_tokens(stack: PreviewStack) -> None:
    towing = stack.notices["boamp/xml-v230/test-pub.xml"]
    pool = stack.api.runtime.pool
    kept = await pool.fetchval("SELECT search_tokens FROM notices WHERE notice_id = $1", towing.notice_id)
    title_keys = {key for key in kept if key.startswith("^")}
    assert "remorquag" in kept and title_keys and {key[1:] for key in title_keys} <= set(kept)
    filters = CompiledFilters.of(SubscriptionFilters.model_validate({"keywords": "remorquage OR dépannage"}))
    selection = _selection(filters, NOW - timedelta(days=30))
    assert selection.exact  # SQL alone counts the matches
    read = await pool.fetch(f"SELECT notice_id FROM notices WHERE {selection.where}", *selection.args)
    assert [row["notice_id"] for row in read] == [towing.notice_id]  # of the 8 notices of the window
    # A phrase is decided by the matching rules, on the notices that have its rarest word only.
    phrase = _selection(CompiledFilters.of(SubscriptionFilters(keywords='"maîtrise d\'œuvre"')), NOW - timedelta(30))
    assert not phrase.exact
    read = await pool.fetch(f"SELECT notice_id FROM notices WHERE {phrase.where}", *phrase.args)
    assert len(read) == 3
    answer = await stack.preview({"filters": {"keywords": "remorquage OR dépannage"}})
    assert (answer["notices_considered"], answer["matches"]) == (8, 1)
    assert [item["notice_id"] for item in answer["sample"]] == [towing.notice_id]


async def test_a_notice_stored_before_search_tokens_were_kept_still_matches_a_keyword_filter(
    stack: PreviewStack,
) -> None:
    towing = stack.notices["boamp/xml-v230/test-pub.xml"]
    pool = stack.api.runtime.pool
    kept = await pool.fetchval("SELECT search_tokens FROM notices WHERE notice_id = $1", towing.notice_id)
    await pool.execute(
        "UPDATE notices SET search_tokens = NULL, matching_columns = NULL WHERE notice_id = $1", towing.notice_id
    )
    try:
        answer = await stack.preview({"filters": {"keywords": "remorquage"}})
    finally:
        await pool.execute(
            "UPDATE notices SET search_tokens = $2, matching_columns = true WHERE notice_id = $1",
            towing.notice_id,
            kept,
        )
    assert [item["notice_id"] for item in answer["sample"]] == [towing.notice_id]


async def test_unknown_codes_are_refused_on_preview_and_create_with_every_bad_value(stack: PreviewStack) -> None:
    filters = {"cpv": ["45000000", "45000001"], "departments": ["31", "96"], "sectors": ["btp"], "regions": ["31"]}
    expected_locs = [
        ["body", "filters", "cpv", 1],
        ["body", "filters", "sectors", 0],
        ["body", "filters", "departments", 1],
        ["body", "filters", "regions", 0],
    ]
    subscription = {"name": "Voirie", "filters": filters, "delivery": {"email": "contact@dupont.example"}}
    outbox_before = await stack.api.runtime.pool.fetchval("SELECT count(*) FROM outbox")
    for path, body in (("/v1/subscriptions/preview", {"filters": filters}), ("/v1/subscriptions", subscription)):
        response = await stack.client.post(path, json=body, headers=stack.auth())
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert [error["loc"] for error in detail] == expected_locs
        assert {error["type"] for error in detail} == {"value_error"}
        assert [error["input"] for error in detail] == ["45000001", "btp", "96", "31"]
        assert detail[0]["msg"] == (
            "CPV code 45000001 is not in CPV 2008; the nearest broader code is 45000000 (Construction work)"
        )
    listed = await stack.client.get("/v1/subscriptions", headers=stack.auth())
    assert listed.json() == []
    assert await stack.api.runtime.pool.fetchval("SELECT count(*) FROM outbox") == outbox_before


async def test_an_unparseable_keyword_query_is_refused_with_the_parser_message(stack: PreviewStack) -> None:
    response = await stack.client.post(
        "/v1/subscriptions/preview", json={"filters": {"keywords": "(voirie OR chaussée"}}, headers=stack.auth()
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "filters", "keywords", "query"]
    assert error["input"] == "(voirie OR chaussée"
    assert error["msg"].startswith("the keyword query does not parse: ")


@pytest.mark.parametrize("bounds", [{"days": 0}, {"days": 366}, {"sample": -1}, {"sample": 51}])
async def test_days_and_sample_are_bounded(stack: PreviewStack, bounds: dict[str, int]) -> None:
    response = await stack.client.post(
        "/v1/subscriptions/preview", json={"filters": {}, **bounds}, headers=stack.auth()
    )
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", *bounds]]


async def test_a_preview_needs_an_api_key_stores_nothing_and_is_the_same_for_every_account(
    stack: PreviewStack,
) -> None:
    body = {"filters": {"departments": ["30", "971", "62"]}}
    for headers in ({}, {"authorization": "Bearer tw_unknown_key"}):
        response = await stack.client.post("/v1/subscriptions/preview", json=body, headers=headers)
        assert response.status_code == 401
    counts = (
        "SELECT (SELECT count(*) FROM subscriptions), (SELECT count(*) FROM outbox), (SELECT count(*) FROM notices)"
    )
    before = await stack.api.runtime.pool.fetchrow(counts)
    mine, theirs = await stack.preview(body), await stack.preview(body, key=stack.other_key)
    assert mine == theirs
    assert mine["matches"] == 3
    assert tuple(await stack.api.runtime.pool.fetchrow(counts)) == tuple(before)
