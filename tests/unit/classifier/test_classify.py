from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas.filtering.text import NORMALISER
from schemas.notice import (
    Address,
    Buyer,
    BuyerCategory,
    ClassifiedNotice,
    ContractNature,
    CpvProvenance,
    GeographySource,
    Lot,
    Money,
    Notice,
    NoticeKind,
    Place,
)
from services.classifier.classify import Classifier

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load()


def _notice(**fields: Any) -> Notice:
    base: dict[str, Any] = {
        "notice_id": "eforms:2024-OJS015-00041387",
        "version": "1",
        "source": "eforms",
        "source_id": "2024-OJS015-00041387",
        "kind": NoticeKind.COMPETITION,
        "title": "Réfection de la voirie communale",
        "language": "fr",
        "buyer": Buyer(name="Toulouse Métropole"),
        "contract_nature": ContractNature.WORKS,
    }
    return Notice(**{**base, **fields})


def test_a_notice_performed_in_haute_garonne(classifier: Classifier) -> None:
    notice = _notice(
        cpv_main="45233140-2",
        cpv_additional=["45233222-1", "not a code"],
        places=[Place(nuts="FRJ23", country="FRA")],
        buyer=Buyer(name="Ville de Paris", address=Address(nuts="FR101", postal_code="75004", country="FRA")),
        estimated_value=Money(amount=Decimal("1250000"), currency="EUR"),
    )
    classified = classifier.classify(notice, now=NOW)
    assert isinstance(classified, ClassifiedNotice)
    assert classified.cpv_main == "45233140"
    assert classified.cpv_additional == ["45233222"]
    assert classified.sectors == ["travaux-publics"]
    assert (classified.cpv_provenance, classified.cpv_confidence) == (CpvProvenance.GIVEN, 1.0)
    # the place of performance wins over the buyer's address in Paris
    assert (classified.departments, classified.regions, classified.countries) == (["31"], ["76"], ["FR"])
    # works for a sub-central buyer: 1.25 M€ is under the EU works threshold
    assert classified.value_band == "90k-eu"
    assert classified.buyer_category == BuyerCategory.MUNICIPALITY
    assert classified.geography_source == GeographySource.PLACES
    assert classified.cpv_inferred == []
    # "not a code" is ignored and said so
    assert len(classified.warnings) == 1 and "not a code" in classified.warnings[0]
    # no procedure id, no deadline: nothing identifies the procedure across sources
    assert classified.duplicate_group is None
    assert classified.classified_at == NOW
    assert classified.title == notice.title
    assert classified.notice_id == notice.notice_id


def test_the_title_and_description_are_tokenised_once_for_every_reader(classifier: Classifier) -> None:
    notice = _notice(description="Reprise des enrobés de la voirie d'accès", cpv_main="45233140")
    tokens = classifier.classify(notice, now=NOW).search_tokens
    assert tokens is not None and tokens.normaliser == NORMALISER
    assert tokens.title == ["refection", "voiri", "communal"]
    assert tokens.description == ["repris", "enrob", "voiri", "acce"]


def test_lot_places_and_codes_count_too(classifier: Classifier) -> None:
    notice = _notice(
        cpv_main="71000000",
        lots=[
            Lot(lot_id="LOT-0001", cpv_main="90911200-8", places=[Place(postal_code="20200")]),
            Lot(lot_id="LOT-0002", cpv_additional=["4521 1000"], places=[Place(nuts="FRM01")]),
        ],
    )
    classified = classifier.classify(notice, now=NOW)
    assert classified.lots[0].cpv_main == "90911200"
    assert classified.lots[1].cpv_additional == ["45211000"]
    assert classified.sectors == ["batiment", "maitrise-oeuvre", "nettoyage"]
    assert (classified.departments, classified.regions, classified.countries) == (["2A", "2B"], ["94"], ["FR"])


@pytest.mark.parametrize(
    ("address", "location"),
    [
        (Address(nuts="FRJ23", postal_code="75004", country="FRA"), (["31"], ["76"], ["FR"])),
        (Address(postal_code="97400", country="FRA"), (["974"], ["04"], ["FR"])),
        (Address(postal_code="34000"), (["34"], ["76"], ["FR"])),
        (Address(nuts="FRZZZ", postal_code="69003"), (["69"], ["84"], ["FR"])),
        (Address(country="BEL", postal_code="1000"), ([], [], ["BE"])),
        (Address(city="Toulouse"), ([], [], [])),
    ],
)
def test_only_a_buyer_address_locates_the_notice(
    classifier: Classifier, address: Address, location: tuple[list[str], list[str], list[str]]
) -> None:
    classified = classifier.classify(_notice(buyer=Buyer(name="Acheteur", address=address)), now=NOW)
    assert (classified.departments, classified.regions, classified.countries) == location
    expected_source = GeographySource.BUYER if any(location) else GeographySource.NONE
    assert classified.geography_source == expected_source


def test_a_place_that_locates_nothing_lets_the_buyer_address_speak(classifier: Classifier) -> None:
    notice = _notice(
        places=[Place(description="Sur l'ensemble du territoire")],
        buyer=Buyer(name="Région Occitanie", address=Address(nuts="FRJ", country="FRA")),
    )
    classified = classifier.classify(notice, now=NOW)
    assert classified.regions == ["76"]
    assert len(classified.departments) == 13


def test_a_notice_without_cpv_codes_gets_inferred_ones(classifier: Classifier) -> None:
    classified = classifier.classify(_notice(places=[Place(nuts="FRJ23")]), now=NOW)
    assert classified.cpv_main is None and classified.cpv_additional == []
    assert classified.cpv_provenance == CpvProvenance.INFERRED
    assert 1 <= len(classified.cpv_inferred) <= 5
    best = classified.cpv_inferred[0]
    # "Réfection de la voirie communale": road works
    assert best.code.startswith("45")
    assert classified.cpv_confidence == best.confidence > 0
    assert classified.sectors == ["travaux-publics"]


def test_a_text_that_says_nothing_gets_no_code(classifier: Classifier) -> None:
    classified = classifier.classify(_notice(title="Lot 1", contract_nature=None), now=NOW)
    assert classified.cpv_inferred == []
    assert classified.sectors == []
    assert (classified.cpv_provenance, classified.cpv_confidence) == (CpvProvenance.NONE, 0.0)


def test_given_codes_are_never_replaced_by_inferred_ones(classifier: Classifier) -> None:
    # a title about roads, a code about cleaning: the buyer's code wins
    classified = classifier.classify(_notice(cpv_main="90910000"), now=NOW)
    assert classified.cpv_provenance == CpvProvenance.GIVEN
    assert classified.cpv_inferred == []
    assert classified.sectors == ["nettoyage"]


def test_unreadable_codes_are_dropped_with_a_warning_and_never_fail(classifier: Classifier) -> None:
    notice = _notice(cpv_main="45000000-8", cpv_additional=["", "4500000A"])
    classified = classifier.classify(notice, now=NOW)
    assert (classified.cpv_main, classified.cpv_additional) == (None, [])
    assert classified.cpv_provenance == CpvProvenance.INFERRED
    assert len(classified.warnings) == 3
    assert any("45000000-8" in warning for warning in classified.warnings)


def test_a_code_outside_cpv_2008_in_a_known_division_is_kept_with_a_warning(classifier: Classifier) -> None:
    classified = classifier.classify(_notice(cpv_main="45999999"), now=NOW)
    assert classified.cpv_main == "45999999"
    assert classified.cpv_provenance == CpvProvenance.GIVEN
    assert classified.sectors == ["batiment", "travaux-publics"]
    assert len(classified.warnings) == 1 and "45999999" in classified.warnings[0]


@pytest.mark.parametrize(
    ("amount", "currency", "nature", "band"),
    [
        ("0", "EUR", ContractNature.WORKS, "lt-40k"),
        ("39999.99", "EUR", ContractNature.WORKS, "lt-40k"),
        ("40000", "EUR", ContractNature.WORKS, "40k-90k"),
        ("89999", "eur", ContractNature.WORKS, "40k-90k"),
        ("90000", "EUR", ContractNature.WORKS, "90k-eu"),
        ("5000000", "EUR", ContractNature.WORKS, "90k-eu"),
        ("5538000", "EUR", ContractNature.WORKS, "gte-eu"),
        ("5000000", "EUR", ContractNature.SERVICES, "gte-eu"),
        ("100000", "GBP", ContractNature.WORKS, "90k-eu"),
        ("100000", "XYZ", ContractNature.WORKS, None),
    ],
)
def test_value_band(
    classifier: Classifier, amount: str, currency: str, nature: ContractNature, band: str | None
) -> None:
    notice = _notice(estimated_value=Money(amount=Decimal(amount), currency=currency), contract_nature=nature)
    classified = classifier.classify(notice, now=NOW)
    assert classified.value_band == band
    if currency.upper() == "EUR":
        assert classified.value_eur == Decimal(amount)
    if currency == "GBP":
        assert classified.value_eur == Decimal("121053.65")  # 100,000 / 0.82608
    assert (band is None) == any("XYZ" in warning for warning in classified.warnings)


def test_a_works_code_makes_the_works_threshold_apply_when_the_nature_is_unknown(classifier: Classifier) -> None:
    value = Money(amount=Decimal("1000000"), currency="EUR")
    works = _notice(cpv_main="45233140", contract_nature=None, estimated_value=value)
    supplies = _notice(cpv_main="30192000", contract_nature=None, estimated_value=value)
    assert classifier.classify(works, now=NOW).value_band == "90k-eu"
    assert classifier.classify(supplies, now=NOW).value_band == "gte-eu"


def test_the_value_band_falls_back_on_the_sum_of_lot_values(classifier: Classifier) -> None:
    lots = [
        Lot(lot_id="LOT-0001", estimated_value=Money(amount=Decimal("30000"), currency="EUR")),
        Lot(lot_id="LOT-0002", estimated_value=Money(amount=Decimal("20000"), currency="EUR")),
        Lot(lot_id="LOT-0003"),
    ]
    assert classifier.classify(_notice(lots=lots), now=NOW).value_band == "40k-90k"
    mixed = [*lots, Lot(lot_id="LOT-0004", estimated_value=Money(amount=Decimal("1"), currency="CHF"))]
    assert classifier.classify(_notice(lots=mixed), now=NOW).value_band is None
    assert classifier.classify(_notice(), now=NOW).value_band is None


def test_the_same_procedure_from_two_sources_shares_a_duplicate_group(classifier: Classifier) -> None:
    deadline = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
    buyer = Buyer(name="Toulouse Métropole", national_id="24310051800011")
    ted = _notice(buyer=buyer, deadline=deadline)
    boamp = _notice(notice_id="boamp:26-12345", source="boamp", source_id="26-12345", buyer=buyer, deadline=deadline)
    other = _notice(buyer=buyer, deadline=deadline, title="Fourniture de mobilier scolaire pour les écoles")
    groups = [classifier.classify(notice, now=NOW).duplicate_group for notice in (ted, boamp, other)]
    assert groups[0] is not None
    assert groups[0] == groups[1] != groups[2]


def test_the_classified_notice_survives_the_wire(classifier: Classifier) -> None:
    classified = classifier.classify(_notice(cpv_main="45233140", places=[Place(nuts="FRJ23")]), now=NOW)
    assert ClassifiedNotice.model_validate_json(classified.model_dump_json()) == classified
