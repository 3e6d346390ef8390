from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.alert import Criterion, Match, MatchReason, match_id_for
from schemas.notice import ClassifiedNotice
from services.matcher.index import SubscriptionIndex, brute_force_match
from services.matcher.matches import build_matches

from .factories import make_notice, make_subscription

NOW = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)


def _real_fuel_notice(boamp_notices: dict[str, ClassifiedNotice]) -> ClassifiedNotice:
    return boamp_notices["20-148172"]  # Albertville, fuel by payment cards


def _matches(notice: ClassifiedNotice) -> list[Match]:
    index = SubscriptionIndex()
    index.upsert(make_subscription("z-fuel", subscriber_id="acme", keywords="carburants"))
    index.upsert(
        make_subscription(
            "a-cards",
            subscriber_id="acme",
            keywords={"query": '"cartes accréditives"', "title_only": True},
            email="achats@acme.example",
            email_frequency="daily",
            language="en",
        )
    )
    index.upsert(
        make_subscription(
            "fleet", subscriber_id="bati", keywords='"parc auto"', email=None, webhook_endpoint_id="we_123"
        )
    )
    index.upsert(make_subscription("roads", subscriber_id="bati", keywords="voirie"))
    return build_matches(notice, index.match(notice, now=NOW), now=NOW)


def test_one_match_per_subscriber_in_subscriber_order(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    notice = _real_fuel_notice(boamp_notices)
    matches = _matches(notice)
    assert [m.subscriber_id for m in matches] == ["acme", "bati"]
    acme, bati = matches
    assert [s.subscription_id for s in acme.subscriptions] == ["a-cards", "z-fuel"]
    assert [s.subscription_id for s in bati.subscriptions] == ["fleet"]
    assert acme.match_id == match_id_for("acme", "boamp:20-148172", "v1")
    assert bati.match_id == match_id_for("bati", "boamp:20-148172", "v1")
    assert acme.matched_at == NOW


def test_matched_subscriptions_carry_reasons_and_delivery(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    acme, bati = _matches(_real_fuel_notice(boamp_notices))
    cards, fuel = acme.subscriptions
    assert cards.name == "Veille a-cards"
    assert cards.reasons == [
        MatchReason(criterion=Criterion.KEYWORDS, values=["cartes accréditives"], notice_values=["title"])
    ]
    assert (cards.email, cards.email_frequency, cards.language) == ("achats@acme.example", "daily", "en")
    assert cards.webhook_endpoint_id is None
    assert fuel.reasons == [
        MatchReason(criterion=Criterion.KEYWORDS, values=["carburants"], notice_values=["title", "description"])
    ]
    assert (fuel.email, fuel.email_frequency, fuel.language) == ("veille@acme.example", "instant", "fr")
    [fleet] = bati.subscriptions
    assert [reason.values for reason in fleet.reasons] == [["parc auto"]]
    assert (fleet.email, fleet.webhook_endpoint_id) == (None, "we_123")


def test_notice_summary(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    [acme, _] = _matches(_real_fuel_notice(boamp_notices))
    summary = acme.notice
    assert summary.notice_id == "boamp:20-148172"
    assert summary.title == (
        "Fourniture de carburant pour le parc auto de la ville d'Albertville au moyen de cartes accréditives"
    )
    assert summary.description is not None and summary.description.startswith("Forme de marché : à bons de commande")
    assert summary.deadline is not None and summary.deadline.isoformat() == "2021-01-12T12:00:00+01:00"


def test_the_same_input_gives_the_same_events(boamp_notices: dict[str, ClassifiedNotice]) -> None:
    notice = _real_fuel_notice(boamp_notices)
    first = [m.model_dump_json() for m in _matches(notice)]
    assert [m.model_dump_json() for m in _matches(notice)] == first


def test_a_new_version_gets_a_new_match_id() -> None:
    subscription = make_subscription(keywords="voirie")
    v1 = make_notice(notice_id="boamp:24-1", version="v1", title="Travaux de voirie")
    v2 = make_notice(notice_id="boamp:24-1", version="v2", title="Travaux de voirie (rectificatif)")
    [m1] = build_matches(v1, brute_force_match([subscription], v1, now=NOW), now=NOW)
    [m2] = build_matches(v2, brute_force_match([subscription], v2, now=NOW), now=NOW)
    assert m1.match_id != m2.match_id
    assert m1.match_id.startswith("m_") and len(m1.match_id) == 34


def test_a_repeated_hit_is_listed_once() -> None:
    subscription = make_subscription("s", keywords="voirie")
    notice = make_notice(title="Voirie")
    hits = brute_force_match([subscription, subscription], notice, now=NOW)
    assert len(hits) == 2
    [match] = build_matches(notice, hits, now=NOW)
    assert [s.subscription_id for s in match.subscriptions] == ["s"]


def test_no_hits_no_matches() -> None:
    assert build_matches(make_notice(), [], now=NOW) == []


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_matches(make_notice(), [], now=datetime(2024, 1, 15, 9, 30))
