from __future__ import annotations

import time
from pathlib import Path

import pytest

from schemas.codelists.data import data_file
from schemas.codelists.geo import Department, Geography, Location, NutsRegion, Region
from schemas.notice import Address, GeographySource, Place
from services.ingest.sources import parse_document

FIXTURES = Path(__file__).parents[2] / "fixtures"


def _files(**replaced: Path) -> dict[str, Path]:
    files = {
        "nuts": data_file("nuts.csv"),
        "nuts2013_fr": data_file("nuts2013-fr-level3.csv"),
        "departments": data_file("cog-departments@2025.csv"),
        "regions": data_file("cog-regions@2025.csv"),
        "countries": data_file("countries.csv"),
    }
    return {**files, **replaced}


@pytest.fixture(scope="module")
def geography() -> Geography:
    return Geography.from_files(**_files())


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
    assert geography.region("76") == Region("76", "Occitanie")
    assert geography.region("76") == ("76", "Occitanie")


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
    with pytest.raises(ValueError, match=r"nuts.csv: NUTS FRJ23 \(Haute-Garonne\) matches no department"):
        Geography.from_files(**_files(departments=departments))


def test_a_nuts2013_list_that_misses_a_department_is_refused(tmp_path: Path) -> None:
    nuts2013 = tmp_path / "nuts2013.csv"
    lines = data_file("nuts2013-fr-level3.csv").read_text(encoding="utf-8").splitlines()
    nuts2013.write_text("\n".join(line for line in lines if not line.startswith("FR623,")) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"nuts2013.csv must give each department .* without one: 31,"):
        Geography.from_files(**_files(nuts2013_fr=nuts2013))


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


def test_every_department_resolves_both_ways(geography: Geography) -> None:
    departments = geography.departments()
    assert len(departments) == 101
    for department in departments:
        assert geography.department(department.code) == department
        assert geography.department_by_name(department.name) == department
        assert geography.region(department.region) is not None
    # The eForms French NUTS-3 labels are an independent spelling of the same names (Val-d’Oise, La Réunion).
    nuts3 = geography.nuts3_departments()
    for nuts_code, department_code in nuts3.items():
        region = geography.nuts_region(nuts_code)
        assert region is not None
        named = geography.department_by_name(region.name)
        assert named is not None and named.code == department_code


def test_every_region_resolves_both_ways(geography: Geography) -> None:
    regions = geography.regions()
    assert len(regions) == 18
    for region in regions:
        assert geography.region(region.code) == region
        assert geography.region_by_name(region.name) == region
    assert {department.region for department in geography.departments()} == {region.code for region in regions}


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("haute garonne", "31"),
        ("HAUTE-GARONNE", "31"),
        ("Cotes d'Armor", "22"),
        ("Côtes-d’Armor", "22"),
        ("Réunion", "974"),
        ("la reunion", "974"),
        ("Territoire-de-Belfort", "90"),
        ("corse du sud", "2A"),
    ],
)
def test_department_by_name_ignores_accents_hyphens_and_articles(geography: Geography, name: str, code: str) -> None:
    department = geography.department_by_name(name)
    assert department is not None and department.code == code


def test_names_and_codes_that_are_no_department_or_region(geography: Geography) -> None:
    assert geography.department_by_name("Haute Garonne du Nord") is None
    assert geography.department_by_name(None) is None
    assert geography.department("99") is None
    assert geography.department("5") == Department("05", "Hautes-Alpes", "93")
    assert geography.region("99") is None
    assert geography.region_by_name("provence alpes cote d azur") == Region("93", "Provence-Alpes-Côte d'Azur")
    assert geography.region_by_name("Midi-Pyrénées") is None  # a region before 2016


def test_every_nuts2013_french_code_joins_one_department(geography: Geography) -> None:
    nuts2013 = geography.nuts3_departments(2013)
    assert len(nuts2013) == 101
    assert len(set(nuts2013.values())) == 101
    assert {code: nuts2013[code] for code in ("FR101", "FR623", "FR715", "FR831", "FR832", "FRA10", "FRA50")} == {
        "FR101": "75",
        "FR623": "31",
        "FR715": "42",
        "FR831": "2A",
        "FR832": "2B",
        "FRA10": "971",
        "FRA50": "976",
    }


def test_nuts2013_codes_locate_departments_and_regions(geography: Geography) -> None:
    assert geography.locate_nuts("FR623") == Location(("31",), ("76",), ("FR",))
    # FR62 is Midi-Pyrénées in NUTS 2013, FRJ2 in NUTS 2016: the same eight departments.
    assert geography.locate_nuts("FR62").departments == geography.locate_nuts("FRJ2").departments
    assert geography.locate_nuts("FR8").regions == ("76", "93", "94")  # Méditerranée
    assert geography.locate_nuts("FRA").departments == ("971", "972", "973", "974", "976")


@pytest.mark.parametrize(
    "relative_path",
    [
        "boamp/xml-v230/test-attribution-10.xml",  # FR232, Fécamp (76)
        "boamp/xml-v230/test-attribution-12.xml",  # FR825, Toulon (83)
        "boamp/xml-v230/test-pub-4.xml",  # FR231, Les Andelys (27)
        "boamp/xml-v230/test-pub-7.xml",  # FR811, Aude (11)
        "boamp/xml-v230/test-pub-8.xml",  # FR612, Carcans (33)
        "boamp/xml-v230/test-pub-9.xml",  # FR715, Saint-Étienne (42)
    ],
)
def test_the_nuts2013_codes_of_real_boamp_notices_agree_with_their_departments(
    geography: Geography, relative_path: str
) -> None:
    path = FIXTURES / relative_path
    (notice,) = parse_document(path.read_bytes(), filename=path.name)
    nuts_places = [place for place in notice.all_places() if place.nuts and len(place.nuts) == 5]
    assert nuts_places
    published_department = next(place.department for place in notice.all_places() if place.department)
    for place in nuts_places:
        assert geography.locate_nuts(place.nuts).departments == (published_department,)


@pytest.mark.parametrize(
    ("nuts", "country"),
    [
        ("DE401", "DE"),
        ("DE91C", "DE"),  # NUTS 2021
        ("DE915", "DE"),  # NUTS 2016 only (Göttingen, merged into DE91C)
        ("HR041", "HR"),  # NUTS 2016 only (Grad Zagreb, HR050 since 2021)
        ("ITG25", "IT"),  # NUTS 2016 only (Sassari)
        ("EL303", "GR"),
        ("UKI31", "GB"),
        ("PL912", "PL"),
        ("BE100", "BE"),
        ("LU000", "LU"),
        ("PT191", "PT"),
        ("ES300", "ES"),
        ("ITZZZ", "IT"),
        ("CH", "CH"),
        ("US123", None),  # not a country with NUTS codes
        ("GR303", None),  # Greece is EL in NUTS
        ("", None),
    ],
)
def test_nuts_codes_of_every_version_give_their_country(geography: Geography, nuts: str, country: str | None) -> None:
    assert geography.nuts_country(nuts) == country


def test_nuts2021_codes_have_a_level_and_a_name(geography: Geography) -> None:
    assert geography.nuts_region("frj23") == NutsRegion("FRJ23", "FR", 3, "Haute-Garonne")
    assert geography.nuts_region("FRJ") == NutsRegion("FRJ", "FR", 1, "Occitanie")
    assert geography.nuts_region("EL") == NutsRegion("EL", "GR", 0, "Ελλάδα")
    assert geography.nuts_region("DE915") is None


def test_the_places_of_a_notice_locate_it(geography: Geography) -> None:
    located = geography.locate_notice(
        [Place(nuts="FRJ23"), Place(postal_code="75015")], Address(postal_code="13001", country="FRA")
    )
    assert located == (Location(("31", "75"), ("11", "76"), ("FR",)), GeographySource.PLACES)


def test_a_notice_without_places_is_located_by_its_buyer_and_flagged(geography: Geography) -> None:
    assert geography.locate_notice([], Address(postal_code="97110", country="FRA")) == (
        Location(("971",), ("01",), ("FR",)),
        GeographySource.BUYER,
    )
    # places that locate nothing count as no places
    assert geography.locate_notice([Place(description="sur site")], Address(nuts="FR623")) == (
        Location(("31",), ("76",), ("FR",)),
        GeographySource.BUYER,
    )


def test_a_notice_that_nothing_locates(geography: Geography) -> None:
    assert geography.locate_notice([Place(country="France")], None) == (Location(), GeographySource.NONE)
    assert geography.locate_notice([], Address(city="Somewhere")) == (Location(), GeographySource.NONE)


def test_a_real_notice_without_places_is_located_by_its_buyer(geography: Geography) -> None:
    path = FIXTURES / "eforms/ted/2024-OJS074-00219998.xml"
    (notice,) = parse_document(path.read_bytes(), filename=path.name)
    assert notice.all_places() == []
    assert geography.locate_notice(notice.all_places(), notice.buyer.address) == (
        Location(("971",), ("01",), ("FR",)),
        GeographySource.BUYER,
    )


def test_loading_the_geography_is_fast() -> None:
    started = time.perf_counter()
    Geography.load()
    assert time.perf_counter() - started < 0.2
