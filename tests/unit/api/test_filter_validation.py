"""Subscription filters checked against the real code lists: every kind of bad value, and several at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.filtering.query import KeywordQuerySyntaxError, parse_keyword_query
from schemas.subscription import SubscriptionFilters
from services.api.filters import EFORMS_PROCEDURE_TYPES, PROCEDURE_TYPES, FilterProblem, FilterValidator
from services.ingest.sources import DocumentError, parse_document
from services.ingest.sources.boamp import _PROCEDURES as BOAMP_PROCEDURES
from services.ingest.sources.ocds import _METHODS as OCDS_METHODS

FIXTURES = Path(__file__).parents[2] / "fixtures"


@pytest.fixture(scope="module")
def validator() -> FilterValidator:
    return FilterValidator.load()


def _problems(validator: FilterValidator, **filters: Any) -> list[FilterProblem]:
    return validator.problems(SubscriptionFilters.model_validate(filters))


def test_known_values_of_every_list_pass(validator: FilterValidator) -> None:
    assert (
        _problems(
            validator,
            cpv=["45000000", "45233140", "03000000", "55300000-3"],
            sectors=["travaux-publics", "nettoyage", "habillement-textile"],
            departments=["31", "2A", "2b", "974", "976", "5"],
            regions=["76", "94", "06"],
            countries=["FR", "be", "GB", "GR"],
            keywords={"query": '(voirie OR chaussée) -"entretien courant"', "title_only": True},
            procedure_types=["open", "oth-single", "exp-int-rail", "selective", "direct"],
        )
        == []
    )


def test_an_empty_filter_set_passes(validator: FilterValidator) -> None:
    assert _problems(validator) == []


def test_a_cpv_code_outside_cpv_2008_names_the_nearest_broader_code(validator: FilterValidator) -> None:
    assert _problems(validator, cpv=["45000000", "45000001"]) == [
        FilterProblem(
            ("cpv", 1),
            "CPV code 45000001 is not in CPV 2008; the nearest broader code is 45000000 (Construction work)",
            "45000001",
        )
    ]


def test_a_cpv_code_of_no_division_says_so(validator: FilterValidator) -> None:
    assert _problems(validator, cpv=["99000000"]) == [
        FilterProblem(("cpv", 0), "CPV code 99000000 is not in CPV 2008: no CPV division starts with 99", "99000000")
    ]


def test_an_unknown_department_is_refused_and_corsica_is_explained(validator: FilterValidator) -> None:
    problems = _problems(validator, departments=["31", "96", "20", "975"])
    assert [(p.loc, p.input) for p in problems] == [
        (("departments", 1), "96"),
        (("departments", 2), "20"),
        (("departments", 3), "975"),
    ]
    assert problems[0].msg == (
        "department '96' is not one of the 101 French departments: INSEE codes go from '01' to '95', "
        "with '2A' and '2B' for Corsica, and '971' to '976' overseas (no '975')"
    )
    assert problems[1].msg == (
        "department '20' is not a department: Corsica is '2A' (Corse-du-Sud) and '2B' (Haute-Corse)"
    )


def test_an_unknown_region_lists_the_18_and_a_department_code_is_pointed_to_departments(
    validator: FilterValidator,
) -> None:
    codes = "01, 02, 03, 04, 06, 11, 24, 27, 28, 32, 44, 52, 53, 75, 76, 84, 93, 94"
    assert _problems(validator, regions=["76", "99", "31"]) == [
        FilterProblem(("regions", 1), f"region '99' is not one of the 18 French regions; use one of: {codes}", "99"),
        FilterProblem(
            ("regions", 2),
            f"region '31' is not one of the 18 French regions; use one of: {codes}; "
            "'31' is a department (Haute-Garonne): put it in departments",
            "31",
        ),
    ]


def test_countries_must_be_iso_alpha_2_and_nuts_abbreviations_get_their_iso_code(validator: FilterValidator) -> None:
    assert _problems(validator, countries=["FR", "UK", "EL", "XX"]) == [
        FilterProblem(("countries", 1), "country 'UK' is not an ISO 3166-1 alpha-2 code: write 'GB'", "UK"),
        FilterProblem(("countries", 2), "country 'EL' is not an ISO 3166-1 alpha-2 code: write 'GR'", "EL"),
        FilterProblem(
            ("countries", 3), "country 'XX' is not an ISO 3166-1 alpha-2 country code such as 'FR', 'BE' or 'DE'", "XX"
        ),
    ]


def test_an_unknown_sector_suggests_the_closest_id_and_lists_them_all(validator: FilterValidator) -> None:
    problems = _problems(validator, sectors=["batiments", "dechets", "btp"])
    assert [(p.loc, p.input) for p in problems] == [
        (("sectors", 0), "batiments"),
        (("sectors", 1), "dechets"),
        (("sectors", 2), "btp"),
    ]
    assert problems[0].msg.startswith("sector 'batiments' is not a sector id (did you mean 'batiment'?); use one of: ")
    assert problems[1].msg.startswith("sector 'dechets' is not a sector id (did you mean 'eau-dechets-environnement'?)")
    assert problems[2].msg.startswith("sector 'btp' is not a sector id; use one of: batiment, travaux-publics, ")
    assert problems[2].msg.endswith(", industrie-equipements, habillement-textile")


def test_an_unknown_procedure_type_suggests_the_codes_it_resembles(validator: FilterValidator) -> None:
    problems = _problems(validator, procedure_types=["Open", "neg", "negotiated"])
    assert [(p.loc, p.input) for p in problems] == [
        (("procedure_types", 0), "Open"),
        (("procedure_types", 1), "neg"),
        (("procedure_types", 2), "negotiated"),
    ]
    every_code = ", ".join(sorted(PROCEDURE_TYPES))
    assert problems[0].msg == (
        f"procedure type 'Open' is not a procedure type code (did you mean 'open'?); use one of: {every_code}"
    )
    assert problems[1].msg.startswith(
        "procedure type 'neg' is not a procedure type code (did you mean 'neg-w-call' or 'neg-wo-call'?)"
    )
    assert problems[2].msg == f"procedure type 'negotiated' is not a procedure type code; use one of: {every_code}"


@pytest.mark.parametrize("query", ["(voirie OR chaussée", '"voirie', "voirie OR", "-"])
def test_a_keyword_query_that_does_not_parse_gives_the_parser_message(validator: FilterValidator, query: str) -> None:
    with pytest.raises(KeywordQuerySyntaxError) as raised:
        parse_keyword_query(query)
    assert _problems(validator, keywords=query) == [
        FilterProblem(("keywords", "query"), f"the keyword query does not parse: {raised.value}", query)
    ]


def test_every_bad_value_is_listed_in_field_order(validator: FilterValidator) -> None:
    problems = _problems(
        validator,
        cpv=["45000001", "45233140", "99000000"],
        sectors=["btp"],
        departments=["96"],
        regions=["99"],
        countries=["UK"],
        keywords="(voirie",
        procedure_types=["ouvert", "open"],
    )
    assert [(p.loc, p.input) for p in problems] == [
        (("cpv", 0), "45000001"),
        (("cpv", 2), "99000000"),
        (("sectors", 0), "btp"),
        (("departments", 0), "96"),
        (("regions", 0), "99"),
        (("countries", 0), "UK"),
        (("keywords", "query"), "(voirie"),
        (("procedure_types", 0), "ouvert"),
    ]


def test_the_procedure_types_are_the_codes_the_sources_emit() -> None:
    assert set(BOAMP_PROCEDURES.values()) <= EFORMS_PROCEDURE_TYPES
    assert PROCEDURE_TYPES == EFORMS_PROCEDURE_TYPES | OCDS_METHODS


def test_every_real_fixture_notice_has_a_known_procedure_type_or_none() -> None:
    found: set[str] = set()
    for path in sorted(FIXTURES.rglob("*")):
        if path.suffix not in (".xml", ".json", ".csv") or "pollers" in path.parts:
            continue
        try:
            notices = parse_document(path.read_bytes(), filename=path.name)
        except DocumentError:
            continue  # the fixtures of refused documents
        found |= {notice.procedure for notice in notices if notice.procedure is not None}
    assert found, "no fixture has a procedure type: the fixture folders moved"
    assert found <= PROCEDURE_TYPES, sorted(found - PROCEDURE_TYPES)
