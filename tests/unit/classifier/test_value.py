from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.notice import BuyerCategory, ContractNature, Money, Notice
from services.classifier.value import amount_in_eur, value_band, value_warning
from services.ingest.sources import parse_document

_FIXTURES = Path(__file__).parents[2] / "fixtures"


def _notices(relative: str) -> list[Notice]:
    path = _FIXTURES / relative
    return parse_document(path.read_bytes(), filename=path.name)


def _eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


@pytest.mark.parametrize(
    ("amount", "band"),
    [
        ("0", "lt-40k"),
        ("39999.99", "lt-40k"),
        ("40000", "40k-90k"),
        ("89999", "40k-90k"),
        ("90000", "90k-eu"),
        ("215999", "90k-eu"),
        ("216000", "gte-eu"),
        ("5404000", "gte-eu"),
    ],
)
def test_supplies_and_services_bands_in_2026(amount: str, band: str) -> None:
    assert value_band(_eur(amount), ContractNature.SERVICES, on=date(2026, 3, 2)) == band


def test_the_eu_threshold_follows_the_notice_date() -> None:
    value = _eur("218000")  # between the 2026-2027 (216,000) and 2024-2025 (221,000) thresholds
    assert value_band(value, ContractNature.SUPPLIES, on=date(2025, 12, 31)) == "90k-eu"
    assert value_band(value, ContractNature.SUPPLIES, on=date(2026, 1, 1)) == "gte-eu"
    assert value_band(value, ContractNature.SUPPLIES, on=datetime(2024, 6, 1, 10, 0, tzinfo=UTC)) == "90k-eu"
    assert value_band(value, ContractNature.SUPPLIES, on=date(2019, 1, 1)) == "90k-eu"  # oldest period known
    assert value_band(value, ContractNature.SUPPLIES) == "gte-eu"  # no date: the latest period


def test_works_have_their_own_threshold() -> None:
    assert value_band(_eur("5403999"), ContractNature.WORKS, on=date(2026, 5, 1)) == "90k-eu"
    assert value_band(_eur("5404000"), ContractNature.WORKS, on=date(2026, 5, 1)) == "gte-eu"
    assert value_band(_eur("5500000"), ContractNature.WORKS, on=date(2025, 5, 1)) == "90k-eu"
    assert value_band(_eur("5538000"), ContractNature.WORKS, on=date(2025, 5, 1)) == "gte-eu"


def test_central_government_and_utilities_thresholds() -> None:
    value = _eur("150000")
    assert value_band(value, ContractNature.SERVICES, buyer=BuyerCategory.STATE, on=date(2026, 2, 1)) == "gte-eu"
    assert value_band(value, ContractNature.SERVICES, buyer=BuyerCategory.MUNICIPALITY, on=date(2026, 2, 1)) == (
        "90k-eu"
    )
    big = _eur("440000")
    assert value_band(big, ContractNature.SUPPLIES, buyer=BuyerCategory.UTILITY, on=date(2025, 2, 1)) == "90k-eu"
    assert value_band(big, ContractNature.SUPPLIES, buyer=BuyerCategory.UTILITY, on=date(2026, 2, 1)) == "gte-eu"
    # works thresholds are the same for every buyer
    assert value_band(big, ContractNature.WORKS, buyer=BuyerCategory.STATE) == "90k-eu"


def test_an_unknown_nature_uses_the_supplies_and_services_threshold() -> None:
    assert value_band(_eur("300000"), None, on=date(2026, 2, 1)) == "gte-eu"


def test_no_value_no_band() -> None:
    assert value_band(None, ContractNature.WORKS) is None
    assert value_warning(None) is None


def test_real_euro_values() -> None:
    (planned,) = [n for n in _notices("purchase-plans/plan-de-charge-exemple.csv") if n.cpv_main == "45261000"]
    assert (planned.estimated_value, planned.contract_nature) == (_eur("420000"), ContractNature.WORKS)
    assert value_band(planned.estimated_value, planned.contract_nature) == "90k-eu"
    (mapa,) = _notices("boamp/opendatasoft/record-mapa-16-138580.json")
    assert mapa.estimated_value == _eur("38820")
    assert value_band(mapa.estimated_value, mapa.contract_nature) == "lt-40k"
    (open_call,) = _notices("eforms/sdk-examples/cn_24_open_accel.xml")
    assert open_call.estimated_value == _eur("291934.60")
    assert open_call.published_at is not None
    band = value_band(open_call.estimated_value, open_call.contract_nature, on=open_call.published_at)
    assert band == "gte-eu"


def test_real_values_in_other_currencies_are_converted() -> None:
    uk = _notices("ocds/real-examples/uk-contracts-finder/" + _UK_RESEARCH)
    assert [n.estimated_value for n in uk] == [Money(amount=Decimal("464500"), currency="GBP")]
    value = uk[0].estimated_value
    assert value is not None
    assert amount_in_eur(value) == Decimal("464500") / Decimal("0.82608")
    assert value_band(value, None, buyer=BuyerCategory.STATE) == "gte-eu"
    (armenia, *_) = _notices("ocds/real-examples/armenia/6.json")
    assert armenia.estimated_value == Money(amount=Decimal("16000.0"), currency="AMD")
    assert value_band(armenia.estimated_value, armenia.contract_nature) == "lt-40k"
    (nigeria,) = _notices("ocds/real-examples/nigeria/" + _NIGERIA)
    assert nigeria.estimated_value == Money(amount=Decimal("54389500.0"), currency="NGN")
    assert value_band(nigeria.estimated_value) == "lt-40k"  # about 35,000 euros
    assert value_warning(nigeria.estimated_value) is None
    (plan_chf,) = [n for n in _notices("purchase-plans/plan-english-comma.csv") if n.cpv_main == "39130000"]
    assert plan_chf.estimated_value == Money(amount=Decimal("45000"), currency="CHF")
    assert value_band(plan_chf.estimated_value, plan_chf.contract_nature) == "40k-90k"  # 47,903 euros


def test_a_currency_outside_the_table_gives_no_band_and_a_warning() -> None:
    value = Money(amount=Decimal("125000"), currency="XOF")
    assert amount_in_eur(value) is None
    assert value_band(value, ContractNature.SERVICES) is None
    assert value_warning(value) == (
        "estimated value 125000 XOF has no value band: currency 'XOF' is not in the conversion table of "
        "services/classifier/value.py; add its rate there"
    )


def test_currency_codes_are_read_case_insensitively() -> None:
    assert value_band(Money(amount=Decimal("50000"), currency="eur")) == "40k-90k"
    assert value_warning(Money(amount=Decimal("50000"), currency="eur")) is None


_UK_RESEARCH = (
    "ocds-b5fd17-2c330cf9-adc8-11e6-9901-0019b9f3037b-ocds-b5fd17-2c330cf9-adc8-11e6-9901-0019b9f3037b-59429-metofc"
    "-9mgh-ghl8ty.json"
)
_NIGERIA = "ocds-gyl66f-borbda-27yetd-ocds-gyl66f-borbda-27yetd.json"
