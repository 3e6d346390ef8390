from __future__ import annotations

import csv
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.notice import ClassifiedNotice, NoticeKind
from schemas.subscription import Subscription
from services.matcher.index import Hit, SubscriptionIndex, _NoticeView, brute_force_match

from .factories import FIXTURES, make_notice, make_subscription


def _match(notice: ClassifiedNotice, *subscriptions: Subscription) -> list[Hit]:
    """Match through the index, and check the brute-force reference agrees."""
    index = SubscriptionIndex()
    for subscription in subscriptions:
        index.upsert(subscription)
    hits = index.match(notice)
    assert hits == brute_force_match(subscriptions, notice)
    return hits


def _reasons(notice: ClassifiedNotice, **filters: Any) -> tuple[str, ...] | None:
    """Why a single subscription with `filters` matches `notice`, or None when it does not."""
    hits = _match(notice, make_subscription(**filters))
    return hits[0].reasons if hits else None


# --- kinds ---


def test_kinds() -> None:
    planning = make_notice(kind=NoticeKind.PLANNING)
    assert _reasons(planning, kinds=["planning", "competition"]) == ("type d'avis : programmation",)
    assert _reasons(planning, kinds=["result"]) is None


# --- CPV, prefix semantics by level ---


@pytest.mark.parametrize(
    ("subscribed", "notice_code", "reason"),
    [
        ("45000000", "45233140", "CPV 45000000 (avis 45233140)"),
        ("45000000", "45000000", "CPV 45000000"),
        ("45000000", "45111000", "CPV 45000000 (avis 45111000)"),
        ("55300000", "55310000", "CPV 55300000 (avis 55310000)"),
        ("55300000", "55300000", "CPV 55300000"),
        ("45233140", "45233140", "CPV 45233140"),
        # 45233141 "Travaux d'entretien routier" is a child of 45233140 "Travaux routiers".
        ("45233140", "45233141", "CPV 45233140 (avis 45233141)"),
        ("09000000", "09100000", "CPV 09000000 (avis 09100000)"),
    ],
)
def test_cpv_code_covers_its_subtree(subscribed: str, notice_code: str, reason: str) -> None:
    assert _reasons(make_notice(cpv_main=notice_code), cpv=[subscribed]) == (reason,)


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
    assert _reasons(notice, cpv=["45200000", "45100000"]) == ("CPV 45200000 (avis 45233140)",)
    assert _reasons(notice, cpv=["71240000"]) == ("CPV 71240000",)
    assert _reasons(notice, cpv=["72000000"]) is None
    assert _reasons(make_notice(), cpv=["45000000"]) is None


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
        matched = {hit.subscription.subscription_id for hit in index.match(make_notice(cpv_main=code))}
        assert parent in matched, f"{parent} should cover {code}"
        assert all(code.startswith(sid.rstrip("0")) for sid in matched)


# --- sectors and geography ---


def test_sectors() -> None:
    notice = make_notice(sectors=["btp-genie-civil", "energie"])
    assert _reasons(notice, sectors=["energie", "informatique", "btp-genie-civil"]) == (
        "secteur energie, btp-genie-civil",
    )
    assert _reasons(notice, sectors=["informatique"]) is None


def test_departments_regions_countries() -> None:
    notice = make_notice(departments=["31", "2A"], regions=["76", "94"], countries=["FR"])
    assert _reasons(notice, departments=["31"]) == ("département 31",)
    assert _reasons(notice, departments=["2a", "81"]) == ("département 2A",)
    assert _reasons(notice, departments=["81"]) is None
    assert _reasons(notice, regions=["76"]) == ("région 76",)
    assert _reasons(notice, regions=["11"]) is None
    assert _reasons(notice, countries=["fr", "BE"]) == ("pays FR",)
    assert _reasons(notice, countries=["BE"]) is None
    assert _reasons(make_notice(), departments=["31"]) is None


def test_every_criterion_must_hold_and_reasons_come_in_a_fixed_order() -> None:
    notice = make_notice(
        title="Travaux de voirie",
        kind=NoticeKind.COMPETITION,
        cpv_main="45233140",
        sectors=["btp-genie-civil"],
        departments=["31"],
        regions=["76"],
        countries=["FR"],
        value=250_000,
    )
    filters: dict[str, Any] = {
        "value_min": 100_000,
        "keywords": ["voiries"],
        "countries": ["FR"],
        "regions": ["76"],
        "departments": ["31"],
        "sectors": ["btp-genie-civil"],
        "cpv": ["45000000"],
        "kinds": ["competition"],
    }
    assert _reasons(notice, **filters) == (
        "type d'avis : appel d'offres",
        "CPV 45000000 (avis 45233140)",
        "secteur btp-genie-civil",
        "département 31",
        "région 76",
        "pays FR",
        "mot-clé « voiries »",
        "valeur estimée 250 000 EUR (au moins 100 000)",
    )
    assert _reasons(notice, **{**filters, "departments": ["32"]}) is None
    assert _reasons(notice, **{**filters, "kinds": ["result"]}) is None


# --- keywords ---


def test_keyword_plural_matches_singular_text() -> None:
    notice = make_notice(title="Travaux de voirie", description="Réfection de la chaussée")
    assert _reasons(notice, keywords=["voiries"]) == ("mot-clé « voiries »",)
    assert _reasons(notice, keywords=["chaussées", "trottoir"]) == ("mot-clé « chaussées »",)
    assert _reasons(notice, keywords=["trottoirs"]) is None


def test_phrase_needs_consecutive_tokens() -> None:
    notice = make_notice(title="Entretien de la voirie communale", description="Travaux d'éclairage et de voirie")
    assert _reasons(notice, keywords=["travaux de voirie"]) is None
    assert _reasons(notice, keywords=["travaux d'éclairage"]) == ("mot-clé « travaux d'éclairage »",)
    assert _reasons(notice, keywords=["voirie communale"]) == ("mot-clé « voirie communale »",)
    assert _reasons(notice, keywords=["communale voirie"]) is None


def test_phrase_does_not_span_title_and_description() -> None:
    notice = make_notice(title="Marché de travaux", description="voirie et réseaux divers")
    assert _reasons(notice, keywords=["travaux voirie"]) is None
    assert _reasons(notice, keywords=["voirie et réseaux"]) == ("mot-clé « voirie et réseaux »",)


def test_all_and_none() -> None:
    notice = make_notice(title="Fourniture de carburants", description="Livraison en vrac et cartes accréditives")
    assert _reasons(notice, keywords={"all": ["carburant", "carte accréditive"]}) == (
        "mot-clé « carburant »",
        "mot-clé « carte accréditive »",
    )
    assert _reasons(notice, keywords={"all": ["carburant", "électricité"]}) is None
    assert _reasons(notice, keywords={"any": ["carburant"], "none": ["vrac"]}) is None
    assert _reasons(notice, keywords={"any": ["carburant"], "none": ["électricité", "gaz"]}) == (
        "mot-clé « carburant »",
        "sans « électricité », « gaz »",
    )
    assert _reasons(notice, keywords={"none": ["électricité"]}) == ("sans « électricité »",)


def test_title_only() -> None:
    notice = make_notice(title="Fourniture de carburants", description="Cartes accréditives en station-service")
    assert _reasons(notice, keywords={"any": ["station service"], "title_only": True}) is None
    assert _reasons(notice, keywords={"any": ["station service"]}) == ("mot-clé « station service »",)
    assert _reasons(notice, keywords={"any": ["carburant"], "title_only": True}) == ("mot-clé « carburant » (titre)",)
    assert _reasons(notice, keywords={"any": ["carburant"], "none": ["station"], "title_only": True}) == (
        "mot-clé « carburant » (titre)",
        "sans « station » (titre)",
    )


def test_stop_word_only_terms_never_match() -> None:
    notice = make_notice(title="Travaux de voirie")
    assert _reasons(notice, keywords=["de la"]) is None
    assert _reasons(notice, keywords={"all": ["voirie", "de"]}) is None
    assert _reasons(notice, keywords={"any": ["voirie"], "none": ["de"]}) == ("mot-clé « voirie »", "sans « de »")


def _matching_boamp(notices: dict[str, ClassifiedNotice], keywords: Any) -> list[str]:
    index = SubscriptionIndex()
    index.upsert(make_subscription(keywords=keywords))
    return [idweb for idweb, notice in notices.items() if index.match(notice)]


def test_keywords_on_real_boamp_notices(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    assert _matching_boamp(boamp_notices, ["eau potable"]) == ["20-153663", "20-154405"]
    assert _matching_boamp(boamp_notices, ["vidéoprotection"]) == ["20-155016", "20-153108"]
    assert _matching_boamp(boamp_notices, ["conseils juridiques"]) == ["20-157374", "20-157570"]
    assert _matching_boamp(boamp_notices, ["juridiques conseils"]) == []
    assert _matching_boamp(boamp_notices, {"all": ["fourniture", "compteurs"]}) == ["20-154405"]
    assert _matching_boamp(boamp_notices, ["station service"]) == [
        "20-147893",
        "20-153510",
        "20-156071",
        "20-157845",
        "20-157921",
    ]
    fuel = _matching_boamp(boamp_notices, ["carburant"])
    assert len(fuel) == 15
    # "20-149466" spells it "carbutant" in its title: only its description says "carburants".
    assert set(fuel) - set(_matching_boamp(boamp_notices, {"any": ["carburant"], "title_only": True})) == {"20-149466"}
    assert set(fuel) - set(_matching_boamp(boamp_notices, {"any": ["carburant"], "none": ["vrac"]})) == {
        "20-149866",
        "20-152520",
    }
    cards = _matching_boamp(boamp_notices, ["cartes accréditives"])
    assert len(cards) == 12 and "20-153510" not in cards  # "... PAR CARTES": no "accréditives"


# --- value range ---


@pytest.mark.parametrize(
    ("value", "low", "high", "reason"),
    [
        (50_000, 50_000, None, "valeur estimée 50 000 EUR (au moins 50 000)"),
        (50_000, None, 50_000, "valeur estimée 50 000 EUR (au plus 50 000)"),
        (Decimal("12345.5"), 10_000, 20_000, "valeur estimée 12 345.50 EUR (entre 10 000 et 20 000)"),
        (49_999, 50_000, None, None),
        (50_001, None, 50_000, None),
        (None, 0, None, None),  # no estimated value: a value criterion cannot hold
        (None, None, 1_000_000, None),
    ],
)
def test_value_range(value: Decimal | int | None, low: int | None, high: int | None, reason: str | None) -> None:
    expected = None if reason is None else (reason,)
    assert _reasons(make_notice(value=value), value_min=low, value_max=high) == expected


# --- lifecycle: no criterion, inactive, upsert, remove ---


def test_a_subscription_without_criteria_matches_everything() -> None:
    assert _reasons(make_notice()) == ("tous les avis (aucun filtre)",)
    assert _reasons(make_notice(kind=NoticeKind.RESULT), keywords={"any": [], "title_only": True}) == (
        "tous les avis (aucun filtre)",
    )


def test_inactive_subscriptions_never_match() -> None:
    inactive = make_subscription("off", active=False)
    index = SubscriptionIndex()
    index.upsert(inactive)
    assert len(index) == 0
    assert index.match(make_notice()) == []
    assert brute_force_match([inactive], make_notice()) == []


def test_upsert_replaces_and_deactivation_removes() -> None:
    index = SubscriptionIndex()
    index.upsert(make_subscription("s", departments=["31"]))
    index.upsert(make_subscription("s", departments=["81"]))
    assert len(index) == 1
    assert index.match(make_notice(departments=["31"])) == []
    [hit] = index.match(make_notice(departments=["81"]))
    assert hit.subscription.filters.departments == ["81"]
    index.upsert(make_subscription("s", departments=["81"], active=False))
    assert len(index) == 0
    assert index.match(make_notice(departments=["81"])) == []


def test_remove() -> None:
    index = SubscriptionIndex()
    index.upsert(make_subscription("a", keywords=["voirie"]))
    index.upsert(make_subscription("b", keywords=["voirie"], cpv=["45000000"]))
    index.remove("a")
    index.remove("a")  # a tombstone delivered twice
    index.remove("never-seen")
    assert len(index) == 1
    notice = make_notice(title="Voirie", cpv_main="45233140")
    assert [hit.subscription.subscription_id for hit in index.match(notice)] == ["b"]
    index.remove("b")
    assert index.match(notice) == []


def test_hits_are_ordered_by_subscription_id() -> None:
    subscriptions = [make_subscription(sid, departments=["31"]) for sid in ("c", "a", "b")]
    hits = _match(make_notice(departments=["31"]), *subscriptions)
    assert [hit.subscription.subscription_id for hit in hits] == ["a", "b", "c"]


def test_candidates_are_a_small_part_of_the_index() -> None:
    """A notice is checked against the subscriptions its keys select, not against all of them."""
    index = SubscriptionIndex()
    departments = [f"{n:02d}" for n in range(1, 96) if n != 20]
    for n in range(2_000):
        index.upsert(
            make_subscription(
                f"s{n:04d}",
                departments=[departments[n % len(departments)]],
                cpv=[f"{10 + n % 80}000000"],
                keywords=[f"mot{n % 50}"],
            )
        )
    index.upsert(make_subscription("everything"))
    notice = make_notice(title="mot7 mot8", departments=["31"], cpv_main="45233140")
    candidates = index._candidates(_NoticeView.of(notice))
    assert len(candidates) < 50
    assert {hit.subscription.subscription_id for hit in index.match(notice)} <= candidates
    assert "everything" in candidates


# --- the index agrees with the brute-force reference ---

_WORDS = ["voirie", "voiries", "travaux", "réseau", "réseaux", "l'eau", "potable", "carburant", "de", "cartes"]
_TERMS = [*_WORDS, "travaux de voirie", "eau potable", "réseaux d'eau", "de la"]
_CPV = ["45000000", "45200000", "45233140", "45233141", "55300000", "55310000", "09000000", "09100000", "72000000"]
_DEPARTMENTS = ["31", "81", "2A"]
_REGIONS = ["76", "94"]
_COUNTRIES = ["FR", "BE"]
_SECTORS = ["btp", "it"]


def _some(values: list[Any], max_size: int = 2) -> st.SearchStrategy[list[Any]]:
    """Mostly no restriction, so that random subscriptions and notices often match."""
    return st.just([]) | st.just([]) | st.lists(st.sampled_from(values), min_size=1, max_size=max_size)


def _up_to(values: list[Any], max_size: int, min_size: int = 0) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(values), min_size=min_size, max_size=max_size)


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
        "keywords": st.none()
        | st.fixed_dictionaries(
            {"any": _some(_TERMS), "all": _some(_TERMS), "none": _some(_WORDS, 1), "title_only": st.booleans()}
        ),
        "value_range": st.sampled_from(
            [(None, None)] * 6 + [(0, None), (1_000, 1_000), (None, 50_000), (1_000, 60_000)]
        ),
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
    }
)


def _subscription(fields: dict[str, Any]) -> Subscription:
    fields = dict(fields)
    low, high = fields.pop("value_range")
    return make_subscription(fields.pop("subscription_id"), value_min=low, value_max=high, **fields)


_subscriptions = _SUBSCRIPTION_FIELDS.map(_subscription)


def _notice(fields: dict[str, Any]) -> ClassifiedNotice:
    return make_notice(**fields)


_notices = _NOTICE_FIELDS.map(_notice)


def _summary(hits: list[Hit]) -> set[tuple[str, tuple[str, ...]]]:
    return {(hit.subscription.subscription_id, hit.reasons) for hit in hits}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(st.lists(_subscriptions, min_size=15, max_size=40), st.lists(_notices, min_size=2, max_size=5))
def test_index_equals_brute_force(subscriptions: list[Subscription], notices: list[ClassifiedNotice]) -> None:
    index = SubscriptionIndex()
    for subscription in subscriptions:
        index.upsert(subscription)  # later versions of one id replace earlier ones
    latest = list({s.subscription_id: s for s in subscriptions}.values())
    for notice in notices:
        assert _summary(index.match(notice)) == _summary(brute_force_match(latest, notice))


def test_the_property_test_sees_matches() -> None:
    """Guard for the strategies above: with these alphabets, random pairs do match often enough."""
    seen: list[int] = []

    @settings(max_examples=100, deadline=None, database=None)
    @given(st.lists(_subscriptions, min_size=10, max_size=10), _notices)
    def count(subscriptions: list[Subscription], notice: ClassifiedNotice) -> None:
        seen.append(len(brute_force_match(subscriptions, notice)))

    count()
    assert sum(1 for n in seen if n) > len(seen) // 3
