"""Classification of a notice: CPV codes (checked or inferred), sectors, geography, buyer type, value band and
duplicate group."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from schemas.codelists.cpv import CpvVocabulary
from schemas.codelists.geo import Geography
from schemas.codelists.sectors import SectorTaxonomy
from schemas.filtering.rules import search_tokens_of
from schemas.notice import ClassifiedNotice, ContractNature, CpvProvenance, Lot, Money, Notice
from services.classifier.buyers import buyer_category
from services.classifier.duplicates import duplicate_group
from services.classifier.inference import CpvInferrer, texts_for_inference
from services.classifier.value import amount_in_eur, value_band, value_warning

_WORKS_DIVISION = "45"
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Classifier:
    """Everything the classifier knows, loaded once and shared by every notice."""

    vocabulary: CpvVocabulary
    taxonomy: SectorTaxonomy
    geography: Geography
    inferrer: CpvInferrer

    @classmethod
    def load(cls) -> Classifier:
        """Load the reference data shipped with the classifier (about a second, mostly the CPV inferrer)."""
        return cls(CpvVocabulary.load(), SectorTaxonomy.load(), Geography.load(), CpvInferrer.load())

    def classify(self, notice: Notice, *, now: datetime) -> ClassifiedNotice:
        """The notice with normalised CPV codes and what they, its text, its places and its buyer say.

        - CPV: codes are checked against CPV 2008; a code that cannot be read is dropped and one outside the list
          is kept; both leave a warning. Provenance is `given` (confidence 1.0) when a valid code remains. Without
          one, codes are inferred from the title and description: the top candidates go to `cpv_inferred`, the
          sectors come from the best one and provenance is `inferred` with its confidence; `none` when the text
          says nothing the vocabulary knows. Given codes are never replaced by inferred ones.
        - Geography: the places of performance (notice and lots), else the buyer's address, flagged as such.
        """
        warnings: list[str] = []
        normalised = notice.model_copy(
            update={
                "cpv_main": self._cpv_or_none(notice.cpv_main, warnings),
                "cpv_additional": self._cpv_list(notice.cpv_additional, warnings),
                "lots": [self._lot(lot, warnings) for lot in notice.lots],
            }
        )
        codes = normalised.all_cpv()
        inferred = [] if codes else self.inferrer.infer(*texts_for_inference(normalised))
        if codes:
            provenance, confidence, sectors = CpvProvenance.GIVEN, 1.0, self.taxonomy.sectors_of(codes)
        elif inferred:
            best = inferred[0]
            provenance, confidence = CpvProvenance.INFERRED, best.confidence
            sectors = self.taxonomy.sectors_of([best.code])
        else:
            provenance, confidence, sectors = CpvProvenance.NONE, 0.0, []
        location, geography_source = self.geography.locate_notice(normalised.all_places(), notice.buyer.address)
        category = buyer_category(notice.buyer)
        value = _estimated_value(normalised)
        warning = value_warning(value)
        if warning is not None:
            warnings.append(warning)
        main_code = normalised.cpv_main or (codes[0] if codes else inferred[0].code if inferred else None)
        return ClassifiedNotice.model_validate(
            {
                **normalised.model_dump(),
                "sectors": sectors,
                "cpv_provenance": provenance,
                "cpv_confidence": confidence,
                "cpv_inferred": inferred,
                "departments": list(location.departments),
                "regions": list(location.regions),
                "countries": list(location.countries),
                "geography_source": geography_source,
                "value_eur": _in_euros(value),
                "buyer_category": category,
                "value_band": value_band(
                    value,
                    _nature(normalised, main_code),
                    buyer=category,
                    on=normalised.published_at or normalised.planned_date,
                ),
                "duplicate_group": duplicate_group(normalised),
                "warnings": list(dict.fromkeys(warnings)),
                # Tokenised once here, for the matcher and the api's read model and previews alike.
                "search_tokens": search_tokens_of(normalised),
                "classified_at": now,
            }
        )

    def _cpv_or_none(self, raw: str | None, warnings: list[str]) -> str | None:
        if raw is None:
            return None
        code, warning = self.vocabulary.check(raw)
        if warning is not None:
            warnings.append(warning)
        return code

    def _cpv_list(self, raws: list[str], warnings: list[str]) -> list[str]:
        codes = (self._cpv_or_none(raw, warnings) for raw in raws)
        return list(dict.fromkeys(code for code in codes if code))

    def _lot(self, lot: Lot, warnings: list[str]) -> Lot:
        return lot.model_copy(
            update={
                "cpv_main": self._cpv_or_none(lot.cpv_main, warnings),
                "cpv_additional": self._cpv_list(lot.cpv_additional, warnings),
            }
        )


def _nature(notice: Notice, main_code: str | None) -> ContractNature | None:
    """The contract nature, else works when the main (or inferred) CPV is a works code: the EU threshold depends
    on it."""
    if notice.contract_nature is not None:
        return notice.contract_nature
    if main_code is not None and main_code.startswith(_WORKS_DIVISION):
        return ContractNature.WORKS
    return None


def _in_euros(value: Money | None) -> Decimal | None:
    amount = None if value is None else amount_in_eur(value)
    return None if amount is None else amount.quantize(_CENT)


def _estimated_value(notice: Notice) -> Money | None:
    """The notice's value, else the sum of its lots' values when they are all in one currency."""
    if notice.estimated_value is not None:
        return notice.estimated_value
    values = [lot.estimated_value for lot in notice.lots if lot.estimated_value is not None]
    currencies = {value.currency.upper() for value in values}
    if len(currencies) != 1:
        return None
    return Money(amount=sum((value.amount for value in values), Decimal(0)), currency=currencies.pop())
