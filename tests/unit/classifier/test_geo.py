from __future__ import annotations

from pathlib import Path

import pytest

from services.classifier.data import data_file
from services.classifier.geo import Geography, Location


@pytest.fixture(scope="module")
def geography() -> Geography:
    return Geography.from_files(
        nuts_fr_level3=data_file("nuts_nuts-fra-lvl3.gc"),
        departments=data_file("cog-departments@2025.csv"),
        regions=data_file("cog-regions@2025.csv"),
        countries=data_file("countries.csv"),
    )


def test_every_french_nuts3_code_joins_one_department(geography: Geography) -> None:
    nuts3 = geography.nuts3_departments()
    assert len(nuts3) == 101
    assert len(set(nuts3.values())) == 101
    assert {code: nuts3[code] for code in ("FR101", "FRJ23", "FRM01", "FRM02", "FRY10", "FRY50", "FRK26")} == {
        "FR101": "75",
        "FRJ23": "31",
        "FRM01": "2A",
        "FRM02": "2B",
        "FRY10": "971",
        "FRY50": "976",
        "FRK26": "69",
    }


def test_the_shipped_geography_loads_the_same_join(geography: Geography) -> None:
    assert Geography.load().nuts3_departments() == geography.nuts3_departments()


def test_a_department_knows_its_region(geography: Geography) -> None:
    haute_garonne = geography.department("31")
    assert haute_garonne is not None
    assert (haute_garonne.name, haute_garonne.region) == ("Haute-Garonne", "76")
    assert geography.region_name("76") == "Occitanie"


def test_a_nuts3_code_gives_its_department_region_and_country(geography: Geography) -> None:
    assert geography.locate_nuts("FRJ23") == Location(("31",), ("76",), ("FR",))
    assert geography.locate_nuts(" frj23 ") == Location(("31",), ("76",), ("FR",))


def test_nuts1_and_nuts2_codes_give_every_department_and_region_under_them(geography: Geography) -> None:
    ile_de_france = geography.locate_nuts("FR1")
    assert ile_de_france.regions == ("11",)
    assert ile_de_france.departments == ("75", "77", "78", "91", "92", "93", "94", "95")
    occitanie = geography.locate_nuts("FRJ")
    assert occitanie.regions == ("76",)
    assert len(occitanie.departments) == 13
    # FRJ2 is the former Midi-Pyrénées region
    assert geography.locate_nuts("FRJ2").departments == ("09", "12", "31", "32", "46", "65", "81", "82")
    assert geography.locate_nuts("FRY").regions == ("01", "02", "03", "04", "06")
    assert geography.locate_nuts("FRM").departments == ("2A", "2B")


def test_country_level_extra_regio_and_foreign_nuts_codes_give_the_country_only(geography: Geography) -> None:
    assert geography.locate_nuts("FR") == Location(countries=("FR",))
    assert geography.locate_nuts("FRZZZ") == Location(countries=("FR",))
    assert geography.locate_nuts("FR623") == Location(countries=("FR",))  # NUTS 2013 Haute-Garonne
    assert geography.locate_nuts("EL303") == Location(countries=("GR",))
    assert geography.locate_nuts("LU000") == Location(countries=("LU",))
    assert geography.locate_nuts("not nuts") == Location()
    assert geography.locate_nuts(None) == Location()


@pytest.mark.parametrize(
    ("postal_code", "department"),
    [
        ("31000", "31"),
        ("31 000", "31"),
        ("01000", "01"),
        ("75015", "75"),
        ("20000", "2A"),  # Ajaccio
        ("20167", "2A"),
        ("20090", "2A"),
        ("20200", "2B"),  # Bastia
        ("20290", "2B"),
        ("20600", "2B"),
        ("97100", "971"),  # Guadeloupe
        ("97200", "972"),
        ("97300", "973"),
        ("97400", "974"),
        ("97600", "976"),  # Mayotte
        ("97500", None),  # Saint-Pierre-et-Miquelon is not a department
        ("98000", None),  # Monaco
        ("20300", None),
        ("3100", None),
        ("B-1000", None),
        ("", None),
    ],
)
def test_postal_code_department(geography: Geography, postal_code: str, department: str | None) -> None:
    assert geography.postal_code_department(postal_code) == department


def test_a_postal_code_abroad_is_not_read_as_french(geography: Geography) -> None:
    assert geography.locate_postal_code("31000", "DEU") == Location(countries=("DE",))
    assert geography.locate_postal_code("97400") == Location(("974",), ("04",), ("FR",))
    assert geography.locate_postal_code("20200", "FRA") == Location(("2B",), ("94",), ("FR",))
    # a country written as a name is not a code: the postal code is still read as French
    assert geography.locate_postal_code("31000", "France") == Location(("31",), ("76",), ("FR",))


@pytest.mark.parametrize(
    ("raw", "alpha2"),
    [
        ("FRA", "FR"),
        ("fra", "FR"),
        ("FR", "FR"),
        (" fr ", "FR"),
        ("BEL", "BE"),
        ("GRC", "GR"),
        ("EL", "GR"),
        ("UK", "GB"),
        ("GBR", "GB"),
        ("MDA", "MD"),
        ("XKX", "XK"),
        ("ZZZ", None),
        ("QQ", None),
        ("France", None),
        (None, None),
    ],
)
def test_country_codes_become_alpha2(geography: Geography, raw: str | None, alpha2: str | None) -> None:
    assert geography.country(raw) == alpha2


def test_nuts_country_prefix(geography: Geography) -> None:
    assert geography.nuts_country("FRJ12") == "FR"
    assert geography.nuts_country("EL303") == "GR"
    assert geography.nuts_country("UKI31") == "GB"
    assert geography.nuts_country("DE401") == "DE"


def test_locate_prefers_nuts_then_postal_code_then_country(geography: Geography) -> None:
    assert geography.locate(nuts="FRJ23", postal_code="75015", country="FRA") == Location(("31",), ("76",), ("FR",))
    assert geography.locate(nuts="FRZZZ", postal_code="75015", country=None) == Location(("75",), ("11",), ("FR",))
    assert geography.locate(nuts=None, postal_code=None, country="BEL") == Location(countries=("BE",))
    assert geography.locate(nuts=None, postal_code=None, country=None) == Location()


def test_a_department_list_that_misses_a_nuts3_label_is_refused(tmp_path: Path) -> None:
    departments = tmp_path / "departments.csv"
    lines = data_file("cog-departments@2025.csv").read_text(encoding="utf-8").splitlines()
    departments.write_text("\n".join(line for line in lines if not line.startswith("31,")) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"NUTS FRJ23 \(Haute-Garonne\) matches no department"):
        Geography.from_files(
            nuts_fr_level3=data_file("nuts_nuts-fra-lvl3.gc"),
            departments=departments,
            regions=data_file("cog-regions@2025.csv"),
            countries=data_file("countries.csv"),
        )


@pytest.mark.parametrize(
    ("raw", "department", "region"), [("5", "05", "93"), ("05", "05", "93"), ("2a", "2A", "94"), ("974", "974", "04")]
)
def test_a_department_code_as_sources_write_it_locates_its_region(
    geography: Geography, raw: str, department: str, region: str
) -> None:
    located = geography.locate(nuts=None, postal_code=None, country=None, department=raw)
    assert located == Location((department,), (region,), ("FR",))


def test_an_unknown_department_code_locates_nothing(geography: Geography) -> None:
    assert geography.locate(nuts=None, postal_code=None, country=None, department="99").is_empty
