"""Classification of a notice: normalised CPV codes, sectors, geography and value band."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from schemas.notice import Address, ClassifiedNotice, CpvProvenance, Lot, Money, Notice, Place
from services.classifier.cpv import CpvVocabulary, InvalidCpvCodeError
from services.classifier.geo import Geography, Location
from services.classifier.sectors import SectorTaxonomy
from services.classifier.value import value_band


@dataclass(frozen=True)
class Classifier:
    """Everything the classifier knows, loaded once and shared by every notice."""

    vocabulary: CpvVocabulary
    taxonomy: SectorTaxonomy
    geography: Geography

    @classmethod
    def load(cls) -> Classifier:
        """Load the reference data shipped with the classifier."""
        return cls(CpvVocabulary.load(), SectorTaxonomy.load(), Geography.load())

    def classify(self, notice: Notice, *, now: datetime) -> ClassifiedNotice:
        """The notice with normalised CPV codes (invalid ones dropped) and what they and its places say.

        CPV provenance is `given` (confidence 1.0) when the notice keeps at least one valid code, else `none`:
        codes are never inferred here. Geography comes from the places of performance (notice and lots); the
        buyer's address is used only when those places locate nothing.
        """
        normalised = notice.model_copy(
            update={
                "cpv_main": self._cpv_or_none(notice.cpv_main),
                "cpv_additional": self._cpv_list(notice.cpv_additional),
                "lots": [self._lot(lot) for lot in notice.lots],
            }
        )
        codes = normalised.all_cpv()
        location = self._places_location(normalised.all_places())
        if location.is_empty and notice.buyer.address is not None:
            location = self._address_location(notice.buyer.address)
        return ClassifiedNotice.model_validate(
            {
                **normalised.model_dump(),
                "sectors": self.taxonomy.sectors_of(codes),
                "cpv_provenance": CpvProvenance.GIVEN if codes else CpvProvenance.NONE,
                "cpv_confidence": 1.0 if codes else 0.0,
                "departments": list(location.departments),
                "regions": list(location.regions),
                "countries": list(location.countries),
                "value_band": value_band(_estimated_value(normalised)),
                "duplicate_group": None,
                "classified_at": now,
            }
        )

    def _cpv_or_none(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        try:
            return self.vocabulary.normalise(raw)
        except InvalidCpvCodeError:
            return None

    def _cpv_list(self, raws: list[str]) -> list[str]:
        codes = (self._cpv_or_none(raw) for raw in raws)
        return list(dict.fromkeys(code for code in codes if code))

    def _lot(self, lot: Lot) -> Lot:
        return lot.model_copy(
            update={"cpv_main": self._cpv_or_none(lot.cpv_main), "cpv_additional": self._cpv_list(lot.cpv_additional)}
        )

    def _places_location(self, places: list[Place]) -> Location:
        location = Location()
        for place in places:
            location = location | self.geography.locate(
                nuts=place.nuts, postal_code=place.postal_code, country=place.country, department=place.department
            )
        return location

    def _address_location(self, address: Address) -> Location:
        return self.geography.locate(
            nuts=address.nuts, postal_code=address.postal_code, country=address.country, department=address.department
        )


def _estimated_value(notice: Notice) -> Money | None:
    """The notice's value, else the sum of its lots' values when they are all in one currency."""
    if notice.estimated_value is not None:
        return notice.estimated_value
    values = [lot.estimated_value for lot in notice.lots if lot.estimated_value is not None]
    currencies = {value.currency.upper() for value in values}
    if len(currencies) != 1:
        return None
    return Money(amount=sum((value.amount for value in values), Decimal(0)), currency=currencies.pop())
