from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas.notice import (
    Address,
    Buyer,
    ClassifiedNotice,
    ContractNature,
    CpvProvenance,
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


def test_loading_the_reference_data_is_fast() -> None:
    started = time.perf_counter()
    Classifier.load()
    assert time.perf_counter() - started < 2.0


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
    assert classified.value_band == "215k-5.38M"
    assert classified.duplicate_group is None
    assert classified.classified_at == NOW
    assert classified.title == notice.title
    assert classified.notice_id == notice.notice_id


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


def test_a_place_that_locates_nothing_lets_the_buyer_address_speak(classifier: Classifier) -> None:
    notice = _notice(
        places=[Place(description="Sur l'ensemble du territoire")],
        buyer=Buyer(name="Région Occitanie", address=Address(nuts="FRJ", country="FRA")),
    )
    classified = classifier.classify(notice, now=NOW)
    assert classified.regions == ["76"]
    assert len(classified.departments) == 13


def test_a_notice_without_cpv_codes_has_no_sector_and_no_provenance(classifier: Classifier) -> None:
    classified = classifier.classify(_notice(places=[Place(nuts="FRJ23")]), now=NOW)
    assert classified.cpv_main is None
    assert classified.sectors == []
    assert (classified.cpv_provenance, classified.cpv_confidence) == (CpvProvenance.NONE, 0.0)


def test_invalid_codes_are_dropped_without_failing(classifier: Classifier) -> None:
    notice = _notice(cpv_main="45000000-8", cpv_additional=["99999999", "", "4500000A"])
    classified = classifier.classify(notice, now=NOW)
    assert (classified.cpv_main, classified.cpv_additional) == (None, [])
    assert classified.cpv_provenance == CpvProvenance.NONE


@pytest.mark.parametrize(
    ("amount", "currency", "band"),
    [
        ("0", "EUR", "<40k"),
        ("39999.99", "EUR", "<40k"),
        ("40000", "EUR", "40k-215k"),
        ("214999", "eur", "40k-215k"),
        ("215000", "EUR", "215k-5.38M"),
        ("5381999", "EUR", "215k-5.38M"),
        ("5382000", "EUR", ">=5.38M"),
        ("100000", "GBP", None),
    ],
)
def test_value_band(classifier: Classifier, amount: str, currency: str, band: str | None) -> None:
    notice = _notice(estimated_value=Money(amount=Decimal(amount), currency=currency))
    assert classifier.classify(notice, now=NOW).value_band == band


def test_the_value_band_falls_back_on_the_sum_of_lot_values(classifier: Classifier) -> None:
    lots = [
        Lot(lot_id="LOT-0001", estimated_value=Money(amount=Decimal("30000"), currency="EUR")),
        Lot(lot_id="LOT-0002", estimated_value=Money(amount=Decimal("20000"), currency="EUR")),
        Lot(lot_id="LOT-0003"),
    ]
    assert classifier.classify(_notice(lots=lots), now=NOW).value_band == "40k-215k"
    mixed = [*lots, Lot(lot_id="LOT-0004", estimated_value=Money(amount=Decimal("1"), currency="CHF"))]
    assert classifier.classify(_notice(lots=mixed), now=NOW).value_band is None
    assert classifier.classify(_notice(), now=NOW).value_band is None


def test_the_classified_notice_survives_the_wire(classifier: Classifier) -> None:
    classified = classifier.classify(_notice(cpv_main="45233140", places=[Place(nuts="FRJ23")]), now=NOW)
    assert ClassifiedNotice.model_validate_json(classified.model_dump_json()) == classified
