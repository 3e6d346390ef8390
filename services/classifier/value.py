"""Value bands: where a notice's estimated value (excluding VAT) stands against the French and EU thresholds.

Bands, in euros:

- `lt-40k`: below 40,000, a French buyer may award without publicity or competition (Code de la commande publique,
  art. R2122-8 as of 1 January 2020; later decrees may move that limit, the band edge stays so that a band keeps
  one meaning);
- `40k-90k`: from 40,000 to 90,000, publicity is free-form; from 90,000 up, a French buyer publishes in the BOAMP
  or a legal-notice journal (art. R2131-12);
- `90k-eu`: from 90,000 to the EU threshold that applies to the contract;
- `gte-eu`: at or above that EU threshold, the EU procedures and publication on TED apply.

EU thresholds, revised every two years on 1 January of even years (Commission Delegated Regulations amending
Directives 2014/24/EU and 2014/25/EU):

| period | works | supplies and services, sub-central buyers | central government | utilities |
|---|---|---|---|---|
| 2024-2025 (Regulations (EU) 2023/2495, 2023/2496) | 5,538,000 | 221,000 | 143,000 | 443,000 |
| 2026-2027 (Regulations (EU) 2025/2152, 2025/2150, OJ L 23.10.2025) | 5,404,000 | 216,000 | 140,000 | 432,000 |

The period is chosen by the notice's date (the latest period when it has none); the next revision takes effect on
1 January 2028 and needs a row in `_EU_THRESHOLDS`. Before 2024 the 2024-2025 row is used: the bands only need to
be right to a few percent.

Other currencies are converted to euros with the static table `_UNITS_PER_EUR` (see its comment for the source and
date of each rate); a currency outside it gets no band and a warning.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Final

from schemas.notice import BuyerCategory, ContractNature, Money

_NO_COMPETITION_LIMIT: Final = Decimal(40_000)
_NATIONAL_PUBLICITY_LIMIT: Final = Decimal(90_000)

# (applies from, works, supplies and services of sub-central buyers, of central government, of utilities)
_EU_THRESHOLDS: Final = (
    (date(2026, 1, 1), Decimal(5_404_000), Decimal(216_000), Decimal(140_000), Decimal(432_000)),
    (date(2024, 1, 1), Decimal(5_538_000), Decimal(221_000), Decimal(143_000), Decimal(443_000)),
)

# Units of each currency for one euro. Source: the ECB euro foreign exchange reference rates of 28 February 2025
# (every currency the ECB quotes that day), except:
# - BGN and HRK: the irrevocable conversion rates fixed when Bulgaria (1 January 2026) and Croatia (1 January 2023)
#   adopted the euro;
# - MDL: official rate of the National Bank of Moldova for 28 April 2025;
# - AMD: euro rate of the Central Bank of Armenia for 16 May 2025;
# - NGN: official-market euro rate of the Central Bank of Nigeria at the close of 28 February 2025.
# The ECB does not quote those three. Bands are coarse, so a rate a few percent off changes few notices.
_UNITS_PER_EUR: Final = {
    "EUR": Decimal(1),
    "USD": Decimal("1.0411"),
    "JPY": Decimal("156.96"),
    "CZK": Decimal("25.029"),
    "DKK": Decimal("7.4583"),
    "GBP": Decimal("0.82608"),
    "HUF": Decimal("399.50"),
    "PLN": Decimal("4.1503"),
    "RON": Decimal("4.9768"),
    "SEK": Decimal("11.1880"),
    "CHF": Decimal("0.9394"),
    "ISK": Decimal("145.70"),
    "NOK": Decimal("11.7245"),
    "TRY": Decimal("38.0186"),
    "AUD": Decimal("1.6741"),
    "BRL": Decimal("6.0712"),
    "CAD": Decimal("1.5019"),
    "CNY": Decimal("7.5782"),
    "HKD": Decimal("8.0980"),
    "IDR": Decimal("17228.17"),
    "ILS": Decimal("3.7457"),
    "INR": Decimal("90.9710"),
    "KRW": Decimal("1519.92"),
    "MXN": Decimal("21.2191"),
    "MYR": Decimal("4.6459"),
    "NZD": Decimal("1.8579"),
    "PHP": Decimal("60.355"),
    "SGD": Decimal("1.4037"),
    "THB": Decimal("35.567"),
    "ZAR": Decimal("19.1917"),
    "BGN": Decimal("1.95583"),
    "HRK": Decimal("7.53450"),
    "MDL": Decimal("19.61"),
    "AMD": Decimal("420.5"),
    "NGN": Decimal("1552.93"),
}


def amount_in_eur(money: Money) -> Decimal | None:
    """The amount in euros, converted with the static table; None for a currency the table lacks."""
    rate = _UNITS_PER_EUR.get(money.currency.upper())
    return None if rate is None else money.amount / rate


def value_band(
    money: Money | None,
    nature: ContractNature | None = None,
    *,
    buyer: BuyerCategory | None = None,
    on: date | None = None,
) -> str | None:
    """The band of an estimated value: 'lt-40k', '40k-90k', '90k-eu' or 'gte-eu'; None without a usable value.

    The EU threshold is the works one for works, else the supplies and services one (also when the nature is
    unknown): of central government for a `state` buyer, of the utilities directive for a `utility` buyer, else of
    sub-central buyers. `on` (the notice's publication date or datetime) picks the threshold period.
    """
    amount = None if money is None else amount_in_eur(money)
    if amount is None:
        return None
    if amount < _NO_COMPETITION_LIMIT:
        return "lt-40k"
    if amount < _NATIONAL_PUBLICITY_LIMIT:
        return "40k-90k"
    return "90k-eu" if amount < _eu_threshold(nature, buyer, on) else "gte-eu"


def value_warning(money: Money | None) -> str | None:
    """The warning to attach to a notice whose value could not be banded, else None."""
    if money is None or amount_in_eur(money) is not None:
        return None
    return (
        f"estimated value {money.amount} {money.currency} has no value band: currency {money.currency!r} is not in "
        "the conversion table of services/classifier/value.py; add its rate there"
    )


def _eu_threshold(nature: ContractNature | None, buyer: BuyerCategory | None, on: date | None) -> Decimal:
    if isinstance(on, datetime):  # a datetime does not compare with a date
        on = on.date()
    row = next((row for row in _EU_THRESHOLDS if on is None or on >= row[0]), _EU_THRESHOLDS[-1])
    _, works, sub_central, central, utilities = row
    if nature is ContractNature.WORKS:
        return works
    if buyer is BuyerCategory.STATE:
        return central
    if buyer is BuyerCategory.UTILITY:
        return utilities
    return sub_central
