from __future__ import annotations

import csv
import gc
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyroaring import BitMap

from schemas.filtering.query import KeywordQuerySyntaxError
from schemas.filtering.rules import subscription_matches
from schemas.notice import BuyerCategory, ClassifiedNotice, CpvCandidate, NoticeKind
from schemas.subscription import Subscription
from services.matcher import index as index_module
from services.matcher.index import Hit, SubscriptionIndex, brute_force_match

from .factories import FIXTURES, make_notice, make_subscription

NOW = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)
Reason = tuple[str, tuple[str, ...], tuple[str, ...]]


def _plain(hit: Hit) -> tuple[str, tuple[Reason, ...]]:
    return hit.subscription_id, tuple(
        (reason.criterion.value, tuple(reason.values), tuple(reason.notice_values)) for reason in hit.reasons
    )


def _match(notice: ClassifiedNotice, *subscriptions: Subscription, now: datetime = NOW) -> list[Hit]:
    """Match through the index, and check the brute-force reference agrees, reasons included."""
    index = SubscriptionIndex()
    for subscription in subscriptions:
        index.upsert(subscription)
    hits = sorted(index.match(notice, now=now), key=lambda hit: hit.subscription_id)
    assert [_plain(hit) for hit in hits] == [_plain(hit) for hit in brute_force_match(subscriptions, notice, now=now)]
    return hits


def _reasons(notice: ClassifiedNotice, now: datetime = NOW, **filters: Any) -> tuple[Reason, ...] | None:
    """Why a single subscription with `filters` matches `notice`, or None when it does not."""
    hits = _match(notice, make_subscription(**filters), now=now)
    return _plain(hits[0])[1] if hits else None


# --- kinds ---


def test_kinds() -> None:
    planning = make_notice(kind=NoticeKind.PLANNING)
    assert _reasons(planning, kinds=["planning", "competition"]) == (("kind", ("planning",), ("planning",)),)
    assert _reasons(planning, kinds=["result"]) is None


# --- CPV, prefix semantics by level ---


@pytest.mark.parametrize(
    ("subscribed", "notice_code"),
    [
        ("45000000", "45233140"),
        ("45000000", "45000000"),
        ("45000000", "45111000"),
        ("55300000", "55310000"),
        ("55300000", "55300000"),
        ("45233140", "45233140"),
        # 45233141 "Travaux d'entretien routier" is a child of 45233140 "Travaux routiers".
        ("45233140", "45233141"),
        ("09000000", "09100000"),
    ],
)
def test_cpv_code_covers_its_subtree(subscribed: str, notice_code: str) -> None:
    assert _reasons(make_notice(cpv_main=notice_code), cpv=[subscribed]) == (("cpv", (subscribed,), (notice_code,)),)


@pytest.mark.parametrize(
    ("subscribed", "notice_code"),
    [
        ("45000000", "44000000"),
        ("45000000", "50000000"),
        ("55300000", "55400000"),
        ("55300000", "55000000"),  # a broader notice code is not inside a narrower subscription
        ("45233140", "45233100"),
        ("45233140", "45233150"),
        ("09000000", "90000000"),
    ],
)
def test_cpv_code_does_not_cover_other_branches(subscribed: str, notice_code: str) -> None:
    assert _reasons(make_notice(cpv_main=notice_code), cpv=[subscribed]) is None


def test_cpv_looks_at_additional_and_lot_codes() -> None:
    notice = make_notice(cpv_main="71000000", cpv_additional=["71240000"], lot_cpv=["45233140", "45111000"])
    assert _reasons(notice, cpv=["45200000", "45100000"]) == (
        ("cpv", ("45200000", "45100000"), ("45233140", "45111000")),
    )
    assert _reasons(notice, cpv=["71240000"]) == (("cpv", ("71240000",), ("71240000",)),)
    assert _reasons(notice, cpv=["72000000"]) is None
    assert _reasons(make_notice(), cpv=["45000000"]) is None


def test_a_notice_without_codes_counts_as_its_best_inferred_code() -> None:
    inferred = make_notice(title="Réfection de la voirie").model_copy(
        update={
            "cpv_provenance": "inferred",
            "cpv_inferred": [
                CpvCandidate(code="45233140", confidence=0.8),
                CpvCandidate(code="71000000", confidence=0.1),
            ],
        }
    )
    assert _reasons(inferred, cpv=["45000000"]) == (("cpv", ("45000000",), ("45233140",)),)
    assert _reasons(inferred, cpv=["71000000"]) is None  # only the best one
    given = make_notice(cpv_main="90910000").model_copy(update={"cpv_inferred": inferred.cpv_inferred})
    assert _reasons(given, cpv=["45000000"]) is None


def test_cpv_prefixes_agree_with_the_official_hierarchy() -> None:
    """Every code with a parent in the CPV 2008 list is matched by a subscription on that parent."""
    with (FIXTURES / "cpv_2008_fr_parent.csv").open(encoding="utf-8", newline="") as rows:
        parent_of = {row["id"][:8]: row["parent"][:8] for row in csv.DictReader(rows)}
    assert len(parent_of) == 9454
    # The file groups the 2-digit divisions under decade codes (31000000 under 30000000): not CPV levels.
    pairs = {code: parent for code, parent in parent_of.items() if parent and not code.endswith("000000")}
    assert len(pairs) > 9000
    index = SubscriptionIndex()
    for parent in set(pairs.values()):
        index.upsert(make_subscription(parent, cpv=[parent]))
    for code, parent in pairs.items():
        matched = {hit.subscription_id for hit in index.match(make_notice(cpv_main=code), now=NOW)}
        assert parent in matched, f"{parent} should cover {code}"
        assert all(code.startswith(sid.rstrip("0")) for sid in matched)


# --- sets: sectors, geography, buyers, procedures, flags ---


def test_sectors() -> None:
    notice = make_notice(sectors=["travaux-publics", "energie"])
    assert _reasons(notice, sectors=["energie", "informatique-telecoms", "travaux-publics"]) == (
        ("sector", ("energie", "travaux-publics"), ("energie", "travaux-publics")),
    )
    assert _reasons(notice, sectors=["informatique-telecoms"]) is None


def test_departments_regions_countries() -> None:
    notice = make_notice(departments=["31", "2A"], regions=["76", "94"], countries=["FR"])
    assert _reasons(notice, departments=["31"]) == (("department", ("31",), ("31",)),)
    assert _reasons(notice, departments=["2a", "81"]) == (("department", ("2A",), ("2A",)),)
    assert _reasons(notice, departments=["81"]) is None
    assert _reasons(notice, regions=["76"]) == (("region", ("76",), ("76",)),)
    assert _reasons(notice, regions=["11"]) is None
    assert _reasons(notice, countries=["fr", "BE"]) == (("country", ("FR",), ("FR",)),)
    assert _reasons(notice, countries=["BE"]) is None
    assert _reasons(make_notice(), departments=["31"]) is None


def test_buyers_by_siret_siren_or_name() -> None:
    notice = make_notice(buyer_name="Mairie de Saint-Étienne", buyer_id="214 202 186 00018")
    assert _reasons(notice, buyers=["21420218600018"]) == (
        ("buyer", ("21420218600018",), ("Mairie de Saint-Étienne",)),
    )
    assert _reasons(notice, buyers=["214202186"]) == (("buyer", ("214202186",), ("Mairie de Saint-Étienne",)),)
    assert _reasons(notice, buyers=["MAIRIE DE SAINT ETIENNE"]) is not None
    assert _reasons(notice, buyers=["21420218600026"]) is None  # another establishment
    assert _reasons(notice, buyers=["Mairie de Saint-Chamond"]) is None
    assert _reasons(make_notice(buyer_id=None), buyers=["214202186"]) is None


def test_buyer_categories_and_procedure_types() -> None:
    notice = make_notice(buyer_category=BuyerCategory.HOSPITAL, procedure="open")
    assert _reasons(notice, buyer_categories=["hospital", "state"]) == (
        ("buyer_category", ("hospital",), ("hospital",)),
    )
    assert _reasons(notice, buyer_categories=["municipality"]) is None
    assert _reasons(make_notice(), buyer_categories=["hospital"]) is None
    assert _reasons(notice, procedure_types=["restricted", "open"]) == (("procedure_type", ("open",), ("open",)),)
    assert _reasons(notice, procedure_types=["oth-single"]) is None
    assert _reasons(make_notice(), procedure_types=["open"]) is None


@pytest.mark.parametrize(
    ("notice_flag", "asked", "matches"),
    [(True, True, True), (False, True, False), (None, True, False), (False, False, True), (None, False, False)],
)
def test_sme_suitable(notice_flag: bool | None, asked: bool, matches: bool) -> None:
    reasons = _reasons(make_notice(sme_suitable=notice_flag), sme_suitable=asked)
    flag = "true" if asked else "false"
    assert reasons == ((("sme_suitable", (flag,), (flag,)),) if matches else None)


def test_reserved() -> None:
    assert _reasons(make_notice(reserved=True), reserved=True) == (("reserved", ("true",), ("true",)),)
    assert _reasons(make_notice(reserved=False), reserved=True) is None
    assert _reasons(make_notice(reserved=True), reserved=False) is None
    assert _reasons(make_notice(reserved=False), reserved=False) == (("reserved", ("false",), ("false",)),)


# --- every criterion together ---


def test_every_criterion_must_hold_and_reasons_come_in_a_fixed_order() -> None:
    deadline = NOW + timedelta(days=20)
    notice = make_notice(
        title="Travaux de voirie",
        kind=NoticeKind.COMPETITION,
        cpv_main="45233140",
        sectors=["travaux-publics"],
        departments=["31"],
        regions=["76"],
        countries=["FR"],
        value=250_000,
        buyer_id="24310051800011",
        buyer_category=BuyerCategory.MUNICIPALITY,
        procedure="open",
        sme_suitable=True,
        deadline=deadline,
    )
    filters: dict[str, Any] = {
        "min_days_left": 10,
        "reserved": False,
        "sme_suitable": True,
        "procedure_types": ["open"],
        "buyer_categories": ["municipality"],
        "buyers": ["243100518"],
        "value_min": 100_000,
        "keywords": "voiries",
        "countries": ["FR"],
        "regions": ["76"],
        "departments": ["31"],
        "sectors": ["travaux-publics"],
        "cpv": ["45000000"],
        "kinds": ["competition"],
    }
    assert _reasons(notice, **filters) == (
        ("kind", ("competition",), ("competition",)),
        ("cpv", ("45000000",), ("45233140",)),
        ("sector", ("travaux-publics",), ("travaux-publics",)),
        ("department", ("31",), ("31",)),
        ("region", ("76",), ("76",)),
        ("country", ("FR",), ("FR",)),
        ("keywords", ("voiries",), ("title", "description")),
        ("value", ("100000", ""), ("250000 EUR",)),
        ("buyer", ("243100518",), ("Ville de Toulouse",)),
        ("buyer_category", ("municipality",), ("municipality",)),
        ("procedure_type", ("open",), ("open",)),
        ("sme_suitable", ("true",), ("true",)),
        ("reserved", ("false",), ("false",)),
        ("deadline", ("10",), (deadline.isoformat(),)),
    )
    for criterion, other in [
        ("departments", ["32"]),
        ("kinds", ["result"]),
        ("buyers", ["999999999"]),
        ("min_days_left", 21),
        ("procedure_types", ["restricted"]),
        ("keywords", "chaussée"),
    ]:
        assert _reasons(notice, **{**filters, criterion: other}) is None, criterion


# --- keywords ---


def test_keyword_plural_matches_singular_text() -> None:
    notice = make_notice(title="Travaux de voirie", description="Réfection de la chaussée")
    assert _reasons(notice, keywords="voiries") == (("keywords", ("voiries",), ("title", "description")),)
    assert _reasons(notice, keywords="chaussées OR trottoir") == (
        ("keywords", ("chaussées",), ("title", "description")),
    )
    assert _reasons(notice, keywords="trottoirs") is None


def test_phrases_need_consecutive_tokens_within_one_field() -> None:
    notice = make_notice(title="Entretien de la voirie communale", description="Travaux d'éclairage et de voirie")
    assert _reasons(notice, keywords='"travaux de voirie"') is None
    assert _reasons(notice, keywords='"travaux d\'éclairage"') is not None
    assert _reasons(notice, keywords='"voirie communale"') is not None
    assert _reasons(notice, keywords='"communale voirie"') is None
    assert _reasons(notice, keywords="communale voirie") is not None  # words, not a phrase: any order
    spanning = make_notice(title="Marché de travaux", description="voirie et réseaux divers")
    assert _reasons(spanning, keywords='"travaux voirie"') is None


def test_and_or_negation() -> None:
    notice = make_notice(title="Fourniture de carburants", description="Livraison en vrac et cartes accréditives")
    assert _reasons(notice, keywords='carburant "carte accréditive"') == (
        ("keywords", ("carburant", "carte accréditive"), ("title", "description")),
    )
    assert _reasons(notice, keywords="carburant électricité") is None
    assert _reasons(notice, keywords="carburant -vrac") is None
    assert _reasons(notice, keywords="carburant -(électricité OR gaz)") is not None
    assert _reasons(notice, keywords="(électricité OR gaz) OR cartes") is not None


def test_title_only() -> None:
    notice = make_notice(title="Fourniture de carburants", description="Cartes accréditives en station-service")
    assert _reasons(notice, keywords={"query": '"station service"', "title_only": True}) is None
    assert _reasons(notice, keywords='"station service"') is not None
    assert _reasons(notice, keywords={"query": "carburant -station", "title_only": True}) == (
        ("keywords", ("carburant",), ("title",)),
    )


def test_accents_ligatures_and_elision() -> None:
    notice = make_notice(title="Mission de maîtrise d'œuvre pour l'école élémentaire")
    assert _reasons(notice, keywords='"maitrise d’oeuvre"') is not None
    assert _reasons(notice, keywords='"MAÎTRISE D\'ŒUVRE"') is not None
    assert _reasons(notice, keywords="ECOLE") is not None
    assert _reasons(notice, keywords='"ecoles elementaires"') is not None


def test_a_query_that_does_not_parse_is_refused_and_the_index_is_unchanged() -> None:
    index = SubscriptionIndex()
    index.upsert(make_subscription("s", keywords="voirie"))
    with pytest.raises(KeywordQuerySyntaxError):
        index.upsert(make_subscription("s", keywords='"voirie'))
    assert [hit.subscription_id for hit in index.match(make_notice(title="Voirie"), now=NOW)] == ["s"]


def _matching_boamp(notices: dict[str, ClassifiedNotice], keywords: Any) -> list[str]:
    index = SubscriptionIndex()
    index.upsert(make_subscription(keywords=keywords))
    return [idweb for idweb, notice in notices.items() if index.match(notice, now=NOW)]


def test_keywords_on_real_boamp_notices(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    assert _matching_boamp(boamp_notices, '"eau potable"') == ["20-153663", "20-154405"]
    assert _matching_boamp(boamp_notices, "vidéoprotection") == ["20-155016", "20-153108"]
    assert _matching_boamp(boamp_notices, '"conseils juridiques"') == ["20-157374", "20-157570"]
    assert _matching_boamp(boamp_notices, '"juridiques conseils"') == []
    assert _matching_boamp(boamp_notices, "fourniture compteurs") == ["20-154405"]
    assert _matching_boamp(boamp_notices, '"station service"') == [
        "20-147893",
        "20-153510",
        "20-156071",
        "20-157845",
        "20-157921",
    ]
    fuel = _matching_boamp(boamp_notices, "carburant")
    assert len(fuel) == 15
    # "20-149466" spells it "carbutant" in its title: only its description says "carburants".
    title_only = _matching_boamp(boamp_notices, {"query": "carburant", "title_only": True})
    assert set(fuel) - set(title_only) == {"20-149466"}
    assert set(fuel) - set(_matching_boamp(boamp_notices, "carburant -vrac")) == {"20-149866", "20-152520"}
    cards = _matching_boamp(boamp_notices, '"cartes accréditives"')
    assert len(cards) == 12 and "20-153510" not in cards  # "... PAR CARTES": no "accréditives"
    assert set(_matching_boamp(boamp_notices, 'vidéoprotection OR "eau potable"')) == {
        "20-153663",
        "20-154405",
        "20-155016",
        "20-153108",
    }


# --- value range and deadline ---


@pytest.mark.parametrize(
    ("value", "low", "high", "without_value", "reason"),
    [
        (50_000, 50_000, None, "include", ("value", ("50000", ""), ("50000 EUR",))),
        (50_000, None, 50_000, "include", ("value", ("", "50000"), ("50000 EUR",))),
        (Decimal("12345.5"), 10_000, 20_000, "exclude", ("value", ("10000", "20000"), ("12345.5 EUR",))),
        (49_999, 50_000, None, "include", None),
        (50_001, None, 50_000, "include", None),
        (None, 0, None, "include", ("value", ("0", ""), ())),
        (None, None, 1_000_000, "exclude", None),
    ],
)
def test_value_range(
    value: Decimal | int | None, low: int | None, high: int | None, without_value: str, reason: Reason | None
) -> None:
    found = _reasons(make_notice(value=value), value_min=low, value_max=high, without_value=without_value)
    assert found == (None if reason is None else (reason,))


def test_min_days_left() -> None:
    soon = make_notice(deadline=NOW + timedelta(days=4, hours=23))
    later = make_notice(deadline=NOW + timedelta(days=5))
    assert _reasons(soon, min_days_left=5) is None
    assert _reasons(later, min_days_left=5) == (("deadline", ("5",), (later.deadline.isoformat(),)),)  # type: ignore[union-attr]
    assert _reasons(make_notice(kind=NoticeKind.PLANNING), min_days_left=5) == (("deadline", ("5",), ()),)
    assert _reasons(soon, now=NOW - timedelta(days=1), min_days_left=5) is not None


# --- lifecycle: no criterion, inactive, upsert, remove ---


def test_a_subscription_without_criteria_matches_everything() -> None:
    assert _reasons(make_notice()) == (("everything", (), ()),)


def test_inactive_subscriptions_never_match() -> None:
    inactive = make_subscription("off", active=False)
    index = SubscriptionIndex()
    index.upsert(inactive)
    assert len(index) == 0
    assert index.match(make_notice(), now=NOW) == []
    assert brute_force_match([inactive], make_notice(), now=NOW) == []


def test_upsert_replaces_and_deactivation_removes() -> None:
    index = SubscriptionIndex()
    index.upsert(make_subscription("s", departments=["31"]))
    index.upsert(make_subscription("s", departments=["81"], name="Tarn"))
    assert len(index) == 1
    assert index.match(make_notice(departments=["31"]), now=NOW) == []
    [hit] = index.match(make_notice(departments=["81"]), now=NOW)
    assert (hit.name, hit.delivery.email) == ("Tarn", "veille@acme.example")
    index.upsert(make_subscription("s", departments=["81"], active=False))
    assert len(index) == 0
    assert index.match(make_notice(departments=["81"]), now=NOW) == []


def test_remove_and_reuse_of_positions() -> None:
    index = SubscriptionIndex()
    index.upsert(make_subscription("a", keywords="voirie"))
    index.upsert(make_subscription("b", keywords="voirie", cpv=["45000000"]))
    index.remove("a")
    index.remove("a")  # a tombstone delivered twice
    index.remove("never-seen")
    assert len(index) == 1
    notice = make_notice(title="Voirie", cpv_main="45233140")
    assert [hit.subscription_id for hit in index.match(notice, now=NOW)] == ["b"]
    index.upsert(make_subscription("c", departments=["31"]))  # takes the position "a" left
    assert [hit.subscription_id for hit in index.match(notice, now=NOW)] == ["b"]
    index.remove("b")
    assert index.match(notice, now=NOW) == []


def test_brute_force_hits_are_ordered_by_subscription_id() -> None:
    subscriptions = [make_subscription(sid, departments=["31"]) for sid in ("c", "a", "b")]
    hits = brute_force_match(subscriptions, make_notice(departments=["31"]), now=NOW)
    assert [hit.subscription_id for hit in hits] == ["a", "b", "c"]


def test_queries_said_as_clauses_are_decided_by_the_index_alone() -> None:
    index = SubscriptionIndex()
    index.upsert(make_subscription("words", keywords="voirie OR chaussée"))
    index.upsert(make_subscription("title", keywords={"query": "voirie", "title_only": True}))
    index.upsert(make_subscription("phrase", keywords='"voirie communale"'))
    index.upsert(make_subscription("and", keywords='(voirie OR chaussée) "voirie communale" -"entretien courant"'))
    index.upsert(make_subscription("title phrase", keywords={"query": '"voirie communale"', "title_only": True}))
    index.upsert(make_subscription("or of ands", keywords="(voirie communale) OR (chaussée neuve)"))
    assert list(index._to_verify) == [index._positions["or of ands"]]  # the one shape clauses cannot say
    notice = make_notice(title="Entretien des chaussées", description="Voirie communale")
    assert sorted(hit.subscription_id for hit in index.match(notice, now=NOW)) == [
        "and",
        "or of ands",
        "phrase",
        "words",
    ]
    excluded = make_notice(title="Entretien courant des chaussées", description="Voirie communale")
    assert "and" not in {hit.subscription_id for hit in index.match(excluded, now=NOW)}
    in_title = make_notice(title="Voirie communale", description="Chaussées")
    assert sorted(hit.subscription_id for hit in index.match(in_title, now=NOW)) == [
        "and",
        "or of ands",
        "phrase",
        "title",
        "title phrase",
        "words",
    ]


def test_value_and_deadline_bounds_are_exact_at_the_edges() -> None:
    index = SubscriptionIndex()
    index.upsert(make_subscription("from 1000", value_min=1_000))
    index.upsert(make_subscription("up to 1000", value_max=1_000))
    index.upsert(make_subscription("5 days", min_days_left=5))
    at_bound = make_notice(value=1_000, deadline=NOW + timedelta(days=5))
    assert sorted(hit.subscription_id for hit in index.match(at_bound, now=NOW)) == [
        "5 days",
        "from 1000",
        "up to 1000",
    ]
    just_short = make_notice(value=1_001, deadline=NOW + timedelta(days=5, microseconds=-1))
    assert sorted(hit.subscription_id for hit in index.match(just_short, now=NOW)) == ["from 1000"]
    index.remove("from 1000")
    assert [hit.subscription_id for hit in index.match(just_short, now=NOW)] == []


def test_each_position_class_fills_chunks_of_its_own_and_freed_positions_are_reused() -> None:
    plain, keywords, cpv = (False, 0), (False, 1), (True, 0)
    with patch.object(index_module, "_CHUNK", 4):
        positions = index_module._Positions()
        assert [positions.take(plain) for _ in range(3)] == [0, 1, 2]
        assert [positions.take(keywords) for _ in range(5)] == [4, 5, 6, 7, 8]  # 8: a new chunk, after the first two
        assert [positions.take(plain) for _ in range(2)] == [3, 12]
        assert positions.take(cpv) == 16
        positions.give_back(1, plain)
        assert positions.take(keywords) == 9
        assert positions.take(cpv) == 17
        assert positions.take(plain) == 1


def test_a_subscription_takes_its_position_in_the_chunks_of_its_class() -> None:
    """Subscriptions with and without CPV codes, without keywords, with a one-clause query or another query, never
    share a chunk of ids."""
    index = SubscriptionIndex()
    queries = {"one": "voirie OR chaussée", "two": "travaux voirie", "negated": "voirie -entretien"}
    with patch.object(index_module, "_CHUNK", 4):
        for number in range(6):
            index.upsert(make_subscription(subscription_id=f"cpv {number}", cpv=["45000000"]))
            index.upsert(make_subscription(subscription_id=f"none {number}", departments=["31"]))
            for shape, query in queries.items():
                index.upsert(make_subscription(subscription_id=f"{shape} {number}", keywords=query))
                with_cpv = f"cpv+{'one' if shape == 'one' else 'other'} {shape} {number}"  # two clauses, negated: other
                index.upsert(make_subscription(subscription_id=with_cpv, cpv=["45000000"], keywords=query))
        chunks: dict[str, set[int]] = {}
        for subscription_id, position in index._positions.items():
            shape = subscription_id.split()[0]
            chunks.setdefault("other" if shape in ("two", "negated") else shape, set()).add(position // 4)
    # Six classes: 12 subscriptions fill three chunks of four, 6 fill two.
    assert {name: len(spanned) for name, spanned in chunks.items()} == {
        "cpv": 2, "none": 2, "one": 2, "other": 3, "cpv+one": 2, "cpv+other": 3
    }  # fmt: skip
    assert sum(len(spanned) for spanned in chunks.values()) == len(set().union(*chunks.values())) == 14
    notice = make_notice(title="Travaux de voirie", cpv_main="45233140", departments=["31"])
    assert len(index.match(notice, now=NOW)) == len(index) == 48  # each class decided in its chunks


def test_subscription_matches_is_the_same_rule_for_one_subscription() -> None:
    notice = make_notice(title="Travaux de voirie", departments=["31"])
    subscription = make_subscription(departments=["31"], keywords="voirie")
    [hit] = _match(notice, subscription)
    assert subscription_matches(subscription.filters, notice, now=NOW) == hit.reasons


# --- the index agrees with the brute-force reference ---

_WORDS = ["voirie", "voiries", "travaux", "réseau", "réseaux", "l'eau", "potable", "carburant", "cartes", "école"]
_TERMS = [*_WORDS, '"travaux de voirie"', '"eau potable"', '"réseaux d\'eau"']
_CPV = ["45000000", "45200000", "45233140", "45233141", "55300000", "55310000", "09000000", "09100000", "72000000"]
_DEPARTMENTS = ["31", "81", "2A"]
_REGIONS = ["76", "94"]
_COUNTRIES = ["FR", "BE"]
_SECTORS = ["btp", "it"]
_BUYERS = ["21420218600018", "214202186", "Ville de Toulouse", "Région Occitanie"]


def _some(values: list[Any], max_size: int = 2) -> st.SearchStrategy[list[Any]]:
    """Mostly no restriction, so that random subscriptions and notices often match."""
    return st.just([]) | st.just([]) | st.lists(st.sampled_from(values), min_size=1, max_size=max_size)


def _rarely(values: list[Any]) -> st.SearchStrategy[list[Any]]:
    """For the criteria few subscriptions set: restricting them all at once would leave nothing to compare."""
    return st.sampled_from([[]] * 5 + [[value] for value in values])


def _up_to(values: list[Any], max_size: int, min_size: int = 0) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(values), min_size=min_size, max_size=max_size)


_TERM = st.sampled_from(_TERMS)
_QUERY = st.one_of(
    _TERM,
    st.tuples(_TERM, _TERM).map(" ".join),
    st.tuples(_TERM, _TERM).map(" OR ".join),
    st.tuples(_TERM, _TERM).map(lambda pair: f"{pair[0]} -{pair[1]}"),
    st.tuples(_TERM, _TERM, _TERM).map(lambda three: f"({three[0]} OR {three[1]}) -{three[2]}"),
    st.tuples(_TERM, _TERM, _TERM).map(lambda three: f"({three[0]} OR {three[1]}) {three[2]}"),
    st.tuples(_TERM, _TERM, _TERM).map(lambda three: f"{three[0]} -({three[1]} OR {three[2]})"),
    st.tuples(_TERM, _TERM, _TERM, _TERM).map(lambda four: f"({four[0]} {four[1]}) OR ({four[2]} {four[3]})"),
    st.lists(_TERM, min_size=5, max_size=6).map(" ".join),  # more clauses than the index decides
)
_FLAG = st.sampled_from([None, None, True, False])
_RARE_FLAG = st.sampled_from([None] * 6 + [True, False])

# Strategies are built once: building them per draw dominates the test's run time.
_SUBSCRIPTION_FIELDS = st.fixed_dictionaries(
    {
        "subscription_id": st.integers(0, 60).map(lambda n: f"s{n}"),
        "subscriber_id": st.sampled_from(["acme", "bati"]),
        "active": st.sampled_from([True, True, True, False]),
        "kinds": _some(list(NoticeKind)),
        "cpv": _some(_CPV),
        "sectors": _some(_SECTORS, 1),
        "departments": _some(_DEPARTMENTS),
        "regions": _some(_REGIONS, 1),
        "countries": _some(_COUNTRIES, 1),
        "buyers": _rarely(_BUYERS),
        "buyer_categories": _rarely(["hospital", "municipality"]),
        "procedure_types": _rarely(["open", "restricted"]),
        "sme_suitable": _RARE_FLAG,
        "reserved": _RARE_FLAG,
        "min_days_left": st.sampled_from([None] * 5 + [0, 5, 30]),
        "keywords": st.none() | st.fixed_dictionaries({"query": _QUERY, "title_only": st.booleans()}),
        "value_range": st.sampled_from(
            [(None, None)] * 5 + [(0, None), (1_000, 1_000), (None, 50_000), (1_000, 60_000), (999, None), (None, 999)]
        ),
        "without_value": st.sampled_from(["include", "exclude"]),
    }
)
_NOTICE_FIELDS = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(list(NoticeKind)),
        "cpv_main": st.none() | st.sampled_from(_CPV),
        "lot_cpv": _up_to(_CPV, 2),
        "sectors": _up_to(_SECTORS, 2),
        "departments": _up_to(_DEPARTMENTS, 2, min_size=1),
        "regions": _up_to(_REGIONS, 2, min_size=1),
        "countries": _up_to(_COUNTRIES, 1, min_size=1),
        "title": _up_to(_WORDS, 5).map(lambda words: " ".join(words) or "Avis"),
        "description": _up_to(_WORDS, 5).map(lambda words: " ".join(words) or None),
        "value": st.sampled_from([None, 0, 999, 1_000, 10_000, 50_000, 60_000, 200_000]),
        "buyer_name": st.sampled_from(["Ville de Toulouse", "Région Occitanie", "CHU de Toulouse"]),
        "buyer_id": st.sampled_from([None, "21420218600018", "21420218600026"]),
        "buyer_category": st.sampled_from([None, "hospital", "municipality"]),
        "procedure": st.sampled_from([None, "open", "restricted"]),
        "sme_suitable": _FLAG,
        "reserved": st.booleans(),
        "deadline": st.sampled_from(
            [None, NOW + timedelta(days=3), NOW + timedelta(days=5), NOW + timedelta(days=30, seconds=-1)]
        ),
    }
)


def _subscription(fields: dict[str, Any]) -> Subscription:
    fields = dict(fields)
    low, high = fields.pop("value_range")
    return make_subscription(fields.pop("subscription_id"), value_min=low, value_max=high, **fields)


_subscriptions = _SUBSCRIPTION_FIELDS.map(_subscription)
_notices = _NOTICE_FIELDS.map(lambda fields: make_notice(**fields))  # type: ignore[arg-type]  # one dict of mixed values


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(
    st.lists(_subscriptions, min_size=8, max_size=20),
    st.lists(st.integers(0, 60).map(lambda n: f"s{n}"), max_size=5),
    st.lists(_notices, min_size=2, max_size=5),
)
def test_index_equals_brute_force(
    subscriptions: list[Subscription], removed: list[str], notices: list[ClassifiedNotice]
) -> None:
    index = SubscriptionIndex()
    for subscription in subscriptions:
        index.upsert(subscription)  # later versions of one id replace earlier ones
    for subscription_id in removed:
        index.remove(subscription_id)
    latest = [s for s in {s.subscription_id: s for s in subscriptions}.values() if s.subscription_id not in removed]
    for notice in notices:
        expected = [_plain(hit) for hit in brute_force_match(latest, notice, now=NOW)]
        # Both ways of meeting a notice's postings: each alone (large postings), or their union (small ones).
        for large_posting in (0, 10**9):
            with patch.object(index_module, "_LARGE_POSTING", large_posting):
                assert sorted(_plain(hit) for hit in index.match(notice, now=NOW)) == expected


# Operations on one index: a subscription upserted, one removed, or a notice matched (against brute force).
_OPERATIONS = st.lists(
    st.one_of(
        _subscriptions.map(lambda subscription: ("upsert", subscription)),
        st.integers(0, 60).map(lambda n: ("remove", f"s{n}")),
        st.integers(0, 3).map(lambda n: ("match", n)),
        st.just(("compact", None)),
    ),
    min_size=10,
    max_size=40,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(_OPERATIONS, st.lists(_notices, min_size=4, max_size=4), st.sampled_from([1, 2, 128]))
def test_kept_passing_sets_follow_every_change(
    operations: list[tuple[str, Any]], notices: list[ClassifiedNotice], kept: int
) -> None:
    """Notices come back (their groups' passing sets are then reused) between upserts and removals, which must keep
    those sets exact; with 1 or 2 sets kept per group, the least recently used are dropped and rebuilt. The index is
    compacted now and then (every set copied), and goes on from its copies."""
    index = SubscriptionIndex()
    current: dict[str, Subscription] = {}
    with patch.object(index_module, "_KEPT_PASSING_SETS", kept):
        for operation, argument in operations:
            if operation == "upsert":
                index.upsert(argument)
                current[argument.subscription_id] = argument
            elif operation == "remove":
                index.remove(argument)
                current.pop(argument, None)
            elif operation == "compact":
                index.compact()
            else:
                notice = notices[argument]
                expected = [_plain(hit) for hit in brute_force_match(current.values(), notice, now=NOW)]
                assert sorted(_plain(hit) for hit in index.match(notice, now=NOW)) == expected


def test_a_kept_set_stays_exact_when_a_bound_between_a_notice_and_the_next_bound_arrives() -> None:
    """A notice's kept set is keyed by the first bound that fails it; a new bound closer to its value must not
    let a later notice with the same value reuse a set that does not know it fails."""
    index = SubscriptionIndex()
    index.upsert(make_subscription("from 100k", value_min=100_000))
    index.upsert(make_subscription("up to 10k", value_max=10_000))
    index.upsert(make_subscription("anything"))
    notice = make_notice(value=50_000)
    assert [hit.subscription_id for hit in index.match(notice, now=NOW)] == ["anything"]
    index.upsert(make_subscription("from 100k too", value_min=100_000))  # at the failing bounds: same kept set
    index.upsert(make_subscription("up to 10k too", value_max=10_000))
    assert [hit.subscription_id for hit in index.match(notice, now=NOW)] == ["anything"]
    index.upsert(make_subscription("from 60k", value_min=60_000))  # between the value and the first failing bound
    index.upsert(make_subscription("up to 40k", value_max=40_000))
    index.upsert(make_subscription("from 40k", value_min=40_000))  # passes
    index.upsert(make_subscription("up to 100k", value_max=100_000))  # passes
    assert sorted(hit.subscription_id for hit in index.match(notice, now=NOW)) == ["anything", "from 40k", "up to 100k"]
    index.remove("from 40k")
    index.upsert(make_subscription("up to 100k", value_max=100_000, departments=["31"]))  # replaced, now fails
    assert [hit.subscription_id for hit in index.match(notice, now=NOW)] == ["anything"]


def _kept_keys(index: SubscriptionIndex) -> list[list[tuple[Any, ...]]]:
    return [list(group._kept) for group in index._groups]


def test_a_kept_passing_set_found_again_stays_under_the_key_it_was_kept_with() -> None:
    """A notice with values seen before reuses each group's kept set, which stays under its first key: the notice's
    own key goes with the notice. (Stored again under it, a tuple and a few frozensets per group would outlive each
    notice, and such young objects make the garbage collector run inside later decisions.)"""
    index = SubscriptionIndex()
    index.upsert(make_subscription("toulouse", departments=["31"], sectors=["btp"]))
    notice = make_notice(title="Travaux de voirie", departments=["31"], sectors=["btp"])
    assert [hit.subscription_id for hit in index.match(notice, now=NOW)] == ["toulouse"]
    first = _kept_keys(index)
    assert [hit.subscription_id for hit in index.match(notice.model_copy(deep=True), now=NOW)] == ["toulouse"]
    again = _kept_keys(index)
    assert [len(keys) for keys in again] == [1, 1, 1]
    assert all(keys[0] is kept[0] for keys, kept in zip(again, first, strict=True))


def test_the_least_recently_used_kept_passing_set_goes_first() -> None:
    index = SubscriptionIndex()
    index.upsert(make_subscription("toulouse", departments=["31"]))
    toulouse, paris, lyon = (make_notice(departments=[code]) for code in ("31", "75", "69"))
    with patch.object(index_module, "_KEPT_PASSING_SETS", 2):
        for notice in (toulouse, paris, toulouse, lyon):  # Toulouse used again after Paris: Paris goes for Lyon
            index.match(notice, now=NOW)
    geography = _kept_keys(index)[0]
    assert [key[0] for key in geography] == [frozenset({"31"}), frozenset({"69"})]


def _sets_held(index: SubscriptionIndex) -> list[BitMap]:
    """Every set the index holds, in a stable order: what is reachable from it through its own classes and through
    dicts (ordered ones included), lists and tuples (not through subscriptions, functions or modules)."""
    held: list[BitMap] = []
    seen: set[int] = set()
    parts = (getattr(index_module, name) for name in _INDEX_PARTS)
    walked = (dict, OrderedDict, list, tuple, SubscriptionIndex, *parts)

    def walk(thing: object) -> None:
        if id(thing) in seen:
            return
        seen.add(id(thing))
        if isinstance(thing, BitMap):
            held.append(thing)
        elif type(thing) in walked:
            for part in gc.get_referents(thing):
                walk(part)

    walk(index)
    return held


_INDEX_PARTS = ("_Dimension", "_BoundDimension", "_Group")


def test_compaction_copies_every_set_and_changes_no_answer() -> None:
    """`compact` lays the index out anew: every set it holds (postings, unrestricted sets, bounds, kept passing sets,
    the active and verified sets) is a new object with the same members, and the index answers as before, updates
    included."""
    subscriptions = [
        make_subscription("cpv", cpv=["45000000"], departments=["31"]),
        make_subscription("words", keywords={"query": 'voirie OR "eau potable"', "title_only": True}),
        make_subscription("two clauses", keywords="travaux voirie -entretien", sectors=["btp"]),
        make_subscription("verified", keywords="(travaux voirie) OR (réseau eau)"),
        make_subscription("bounded", value_min=10_000, value_max=500_000, min_days_left=5),
        make_subscription("buyer", buyers=["Ville de Toulouse"], kinds=["competition"]),
        make_subscription("anything"),
    ]
    notices = [
        make_notice(title="Travaux de voirie", cpv_main="45233140", departments=["31"], value=50_000),
        make_notice(title="Réseau d'eau potable", sectors=["btp"], deadline=NOW + timedelta(days=10)),
    ]
    index = SubscriptionIndex()
    for subscription in subscriptions:
        index.upsert(subscription)
    answers = [sorted(_plain(hit) for hit in index.match(notice, now=NOW)) for notice in notices]
    before = _sets_held(index)
    assert len(before) > 40  # the walk does find the sets, kept passing sets included

    index.compact()

    after = _sets_held(index)
    assert [list(members) for members in after] == [list(members) for members in before]
    assert not {id(members) for members in after} & {id(members) for members in before}
    assert [sorted(_plain(hit) for hit in index.match(notice, now=NOW)) for notice in notices] == answers
    late = make_subscription("late", departments=["31"])
    index.remove("words")
    index.upsert(late)
    expected = [s for s in subscriptions if s.subscription_id != "words"] + [late]
    for notice in notices:
        brute = [_plain(hit) for hit in brute_force_match(expected, notice, now=NOW)]
        assert sorted(_plain(hit) for hit in index.match(notice, now=NOW)) == brute


def test_the_property_test_sees_matches() -> None:
    """Guard for the strategies above: with these alphabets, random pairs do match often enough (about half of
    them). Derandomised: with random draws, 60 pairs fell under a quarter about once in forty runs."""
    seen: list[int] = []

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(st.lists(_subscriptions, min_size=10, max_size=10), _notices)
    def count(subscriptions: list[Subscription], notice: ClassifiedNotice) -> None:
        seen.append(len(brute_force_match(subscriptions, notice, now=NOW)))

    count()
    assert sum(1 for n in seen if n) > len(seen) // 4
