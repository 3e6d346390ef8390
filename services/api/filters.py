"""Subscription filters checked against the platform's code lists, beyond the shapes the contract checks.

`schemas/subscription.py` checks that a CPV code has 8 digits or that a department looks like one; this module
checks that the value exists: CPV 2008, the 101 departments and 18 regions of the INSEE list, ISO 3166-1 countries,
the sector taxonomy, the procedure types the sources emit, and the keyword query language. The code lists are the
classifier's own, so a subscription can only ask for values a classified notice can carry. Pure: the reference data
is read once by `FilterValidator.load()`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from schemas.codelists.cpv import CpvVocabulary, cpv_ancestors
from schemas.codelists.geo import Geography
from schemas.codelists.sectors import SectorTaxonomy
from schemas.filtering.query import KeywordQuerySyntaxError, parse_keyword_query
from schemas.subscription import SubscriptionFilters

# What `Notice.procedure` can hold, so what a `procedure_types` filter can match: the eForms
# procurement-procedure-type codes (eForms notices carry them as published, BOAMP notices are mapped to them) and
# the OCDS `method` codes (open, selective, limited, direct), which OCDS notices carry.
EFORMS_PROCEDURE_TYPES: Final = frozenset(
    {
        "open",
        "restricted",
        "neg-w-call",
        "neg-wo-call",
        "comp-dial",
        "innovation",
        "oth-single",
        "oth-mult",
        "comp-tend",
        "exp-int-rail",
    }
)
OCDS_PROCUREMENT_METHODS: Final = frozenset({"open", "selective", "limited", "direct"})
PROCEDURE_TYPES: Final = EFORMS_PROCEDURE_TYPES | OCDS_PROCUREMENT_METHODS

Location = tuple[str | int, ...]
# A check of one value: why it is refused, or None.
_ProblemOf = Callable[[str], str | None]


@dataclass(frozen=True)
class FilterProblem:
    """One refused value: where it sits inside the filters (`("cpv", 0)`), why, and the value itself."""

    loc: Location
    msg: str
    input: str


class FilterValidator:
    """Checks every value of a subscription's filters against the code lists; loaded once per process."""

    def __init__(self, *, cpv: CpvVocabulary, geography: Geography, sectors: SectorTaxonomy) -> None:
        self._cpv = cpv
        self._geography = geography
        self._sector_ids = tuple(sector.id for sector in sectors.sectors)
        self._region_codes = tuple(region.code for region in geography.regions())

    @classmethod
    def load(cls) -> FilterValidator:
        """The validator over the reference data shipped with the classifier."""
        return cls(cpv=CpvVocabulary.load(), geography=Geography.load(), sectors=SectorTaxonomy.load())

    def problems(self, filters: SubscriptionFilters) -> list[FilterProblem]:
        """Every refused value of `filters`, in field order then list order; empty when all are known."""
        found: list[FilterProblem] = []
        found += _each("cpv", filters.cpv, self._cpv_problem)
        found += _each("sectors", filters.sectors, self._sector_problem)
        found += _each("departments", filters.departments, self._department_problem)
        found += _each("regions", filters.regions, self._region_problem)
        found += _each("countries", filters.countries, self._country_problem)
        if filters.keywords is not None:
            query = filters.keywords.query
            try:
                parse_keyword_query(query)
            except KeywordQuerySyntaxError as exc:
                found.append(FilterProblem(("keywords", "query"), f"the keyword query does not parse: {exc}", query))
        found += _each("procedure_types", filters.procedure_types, _procedure_problem)
        return found

    def _cpv_problem(self, code: str) -> str | None:
        if code in self._cpv:
            return None
        broader = next((ancestor for ancestor in cpv_ancestors(code) if ancestor in self._cpv), None)
        if broader is None:
            return f"CPV code {code} is not in CPV 2008: no CPV division starts with {code[:2]}"
        label = self._cpv.label(broader, "en")
        return f"CPV code {code} is not in CPV 2008; the nearest broader code is {broader} ({label})"

    def _sector_problem(self, sector_id: str) -> str | None:
        if sector_id in self._sector_ids:
            return None
        return f"sector {sector_id!r} is not a sector id{_suggestion(sector_id, self._sector_ids)}; " + _one_of(
            self._sector_ids
        )

    def _department_problem(self, code: str) -> str | None:
        if self._geography.department(code) is not None:
            return None
        if code == "20":
            return "department '20' is not a department: Corsica is '2A' (Corse-du-Sud) and '2B' (Haute-Corse)"
        return (
            f"department {code!r} is not one of the 101 French departments: INSEE codes go from '01' to '95', "
            "with '2A' and '2B' for Corsica, and '971' to '976' overseas (no '975')"
        )

    def _region_problem(self, code: str) -> str | None:
        if self._geography.region(code) is not None:
            return None
        message = f"region {code!r} is not one of the 18 French regions; " + _one_of(self._region_codes)
        department = self._geography.department(code)
        if department is not None:
            message += f"; {code!r} is a department ({department.name}): put it in departments"
        return message

    def _country_problem(self, code: str) -> str | None:
        known = self._geography.country(code)
        if known == code:
            return None
        if known is not None:  # NUTS abbreviations: EL for Greece, UK for the United Kingdom
            return f"country {code!r} is not an ISO 3166-1 alpha-2 code: write {known!r}"
        return f"country {code!r} is not an ISO 3166-1 alpha-2 country code such as 'FR', 'BE' or 'DE'"


def _procedure_problem(code: str) -> str | None:
    if code in PROCEDURE_TYPES:
        return None
    choices = sorted(PROCEDURE_TYPES)
    return f"procedure type {code!r} is not a procedure type code{_suggestion(code, choices)}; " + _one_of(choices)


def _each(field: str, values: Iterable[str], problem_of: _ProblemOf) -> list[FilterProblem]:
    found = []
    for position, value in enumerate(values):
        message = problem_of(value)
        if message is not None:
            found.append(FilterProblem((field, position), message, value))
    return found


def _suggestion(value: str, choices: Iterable[str]) -> str:
    """The ids that contain `value` as a word ('dechets'), else the closest spelling ('batiments'), if any."""
    wanted, listed = value.lower(), list(choices)
    close = [choice for choice in listed if wanted in choice.split("-")]
    close = close or difflib.get_close_matches(wanted, listed, n=1, cutoff=0.75)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""


def _one_of(choices: Iterable[str]) -> str:
    return "use one of: " + ", ".join(choices)
