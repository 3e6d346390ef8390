"""Value bands: where a notice's estimated value stands against the French and EU procurement thresholds.

Band edges, in euros excluding VAT:
- 40,000: below it a French buyer may award without publicity or competition (Code de la commande publique,
  art. R2122-8, since 1 January 2020);
- 215,000: EU threshold for supplies and services of sub-central buyers (local authorities, hospitals…),
  2022-2023 (Delegated Regulation (EU) 2021/1952); above it the EU procedures and publication on TED apply;
- 5,382,000: EU threshold for works contracts, 2022-2023 (same regulation).
The EU thresholds are revised every two years (2024-2025: 221,000 and 5,538,000). The edges stay fixed so that a
band keeps one meaning across revisions; a subscriber who needs the exact current threshold filters on the value.
"""

from __future__ import annotations

from decimal import Decimal

from schemas.notice import Money

VALUE_BANDS: tuple[tuple[str, Decimal | None], ...] = (
    ("<40k", Decimal(40_000)),
    ("40k-215k", Decimal(215_000)),
    ("215k-5.38M", Decimal(5_382_000)),
    (">=5.38M", None),
)


def value_band(value: Money | None) -> str | None:
    """The band of a value in euros; None when there is no value or it is in another currency."""
    if value is None or value.currency.upper() != "EUR":
        return None
    for band, upper_bound in VALUE_BANDS:
        if upper_bound is None or value.amount < upper_bound:
            return band
    raise AssertionError("the last value band is open-ended")  # pragma: no cover
