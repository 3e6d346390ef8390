"""Geography: NUTS codes, French postal and department codes and country codes -> departments, regions, countries.

`nuts.csv` holds every NUTS 2021 code of the eForms code list (EU member states, EFTA and candidate countries,
and the United Kingdom) with its country, level and name. French NUTS-3 regions are the departments: their names
are joined to the INSEE list of departments ignoring accents, case and hyphens, and every department must match.
French NUTS codes did not change between NUTS 2016 and NUTS 2021. Older French notices (BOAMP until 2017) carry
NUTS 2013 codes, from before the 2016 merger of regions (FR623 for Haute-Garonne): `nuts2013-fr-level3.csv` joins
those to the departments the same way; no NUTS 2013 code is reused with another meaning in NUTS 2016. A shorter
NUTS code (FRJ, FRJ2, FR62) stands for all the NUTS-3 codes under it, so for all their departments and regions.
A country-level or Extra-Regio code (FR, FRZZZ) gives the country only, as does any other country's code; a code
missing from NUTS 2021 (a NUTS 2016 code of another country, DE915) gives the country its prefix names.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

from schemas.codelists.data import data_file
from schemas.notice import Address, GeographySource, Place

_NUTS_FILE = "nuts.csv"
_NUTS2013_FR_FILE = "nuts2013-fr-level3.csv"
_DEPARTMENTS_FILE = "cog-departments@2025.csv"
_REGIONS_FILE = "cog-regions@2025.csv"
_COUNTRIES_FILE = "countries.csv"

# NUTS writes Greece and the United Kingdom with the EU's own abbreviations, not ISO 3166-1.
_NUTS_COUNTRY_EXCEPTIONS = {"EL": "GR", "UK": "GB"}
_NUTS_SHAPE = re.compile(r"^[A-Z]{2}[0-9A-Z]{0,3}$")
_POSTAL_CODE = re.compile(r"^\d{5}$")
_LEADING_ARTICLE = re.compile(r"^(?:la|le|les|l) ")

NutsVersion = Literal[2013, 2021]
_Value = TypeVar("_Value")


@dataclass(frozen=True)
class Location:
    """Where something is: INSEE department and region codes, ISO 3166-1 alpha-2 country codes."""

    departments: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.departments or self.regions or self.countries)

    def __or__(self, other: Location) -> Location:
        return Location(
            departments=_merged(self.departments, other.departments),
            regions=_merged(self.regions, other.regions),
            countries=_merged(self.countries, other.countries),
        )


@dataclass(frozen=True)
class Department:
    """A French department: INSEE code ('31', '2A', '974'), name and INSEE code of its region."""

    code: str
    name: str
    region: str


class Region(NamedTuple):
    """A French region: INSEE code ('76') and name ('Occitanie')."""

    code: str
    name: str


@dataclass(frozen=True)
class NutsRegion:
    """A NUTS 2021 code with its ISO 3166-1 alpha-2 country, level (0 = country, 1-3) and name in its language."""

    code: str
    country: str
    level: int
    name: str


class Geography:
    """French departments and regions, the NUTS codes that name them, and ISO country codes; loaded once."""

    def __init__(
        self,
        *,
        departments: Iterable[Department],
        regions: Iterable[Region],
        nuts: Iterable[NutsRegion],
        nuts3_departments: dict[NutsVersion, dict[str, str]],
        alpha3_to_alpha2: dict[str, str],
    ) -> None:
        self._departments = {department.code: department for department in departments}
        self._regions = {region.code: region for region in regions}
        self._nuts = {region.code: region for region in nuts}
        self._nuts_prefixes = frozenset(code[:2] for code in self._nuts)  # EL and UK, not GR and GB
        self._nuts3_departments = nuts3_departments
        self._alpha3_to_alpha2 = alpha3_to_alpha2
        self._alpha2 = frozenset(alpha3_to_alpha2.values())
        self._departments_by_name = _by_name_key(
            (department.name, department) for department in self._departments.values()
        )
        self._regions_by_name = _by_name_key((region.name, region) for region in self._regions.values())
        # Every prefix of a NUTS-3 code, down to NUTS-1 (FRJ), names the departments under it. The NUTS 2013 and
        # NUTS 2021 French codes share no prefix with another meaning, so one table serves both versions.
        self._nuts_departments: dict[str, set[str]] = {}
        for joined in nuts3_departments.values():
            for nuts3, department in joined.items():
                for length in (3, 4, 5):
                    self._nuts_departments.setdefault(nuts3[:length], set()).add(department)

    @classmethod
    def load(cls) -> Geography:
        """The geography shipped with the classifier."""
        return cls.from_files(
            nuts=data_file(_NUTS_FILE),
            nuts2013_fr=data_file(_NUTS2013_FR_FILE),
            departments=data_file(_DEPARTMENTS_FILE),
            regions=data_file(_REGIONS_FILE),
            countries=data_file(_COUNTRIES_FILE),
        )

    @classmethod
    def from_files(
        cls, *, nuts: Path, nuts2013_fr: Path, departments: Path, regions: Path, countries: Path
    ) -> Geography:
        """Read and join the reference tables; raises ValueError when a French NUTS-3 name and the departments
        disagree, since the two lists must then be updated together."""
        department_list = [
            Department(code=row["code"], name=row["name"], region=row["region_code"]) for row in _csv_rows(departments)
        ]
        by_name = _by_name_key((department.name, department.code) for department in department_list)
        nuts_regions = [
            NutsRegion(code=row["code"], country=row["country"], level=int(row["level"]), name=row["name"])
            for row in _csv_rows(nuts)
        ]
        french_nuts3 = {
            region.code: region.name
            for region in nuts_regions
            if region.country == "FR" and region.level == 3 and not region.code.endswith("ZZZ")  # Extra-Regio
        }
        nuts2013 = {row["code"]: row["name"] for row in _csv_rows(nuts2013_fr)}
        joined: dict[NutsVersion, dict[str, str]] = {
            2021: _joined_departments(french_nuts3, by_name, nuts.name, departments.name),
            2013: _joined_departments(nuts2013, by_name, nuts2013_fr.name, departments.name),
        }
        return cls(
            departments=department_list,
            regions=[Region(code=row["code"], name=row["name"]) for row in _csv_rows(regions)],
            nuts=nuts_regions,
            nuts3_departments=joined,
            alpha3_to_alpha2={row["alpha3"]: row["alpha2"] for row in _csv_rows(countries)},
        )

    def nuts3_departments(self, version: NutsVersion = 2021) -> dict[str, str]:
        """French NUTS-3 code -> INSEE department code: FRJ23 -> '31' (NUTS 2016 and 2021), FR623 -> '31' (2013)."""
        return dict(self._nuts3_departments[version])

    def nuts_region(self, code: str | None) -> NutsRegion | None:
        """The NUTS 2021 entry of a code ('frj23' -> Haute-Garonne, level 3); None for a code not in NUTS 2021."""
        normalised = _nuts_code(code)
        return self._nuts.get(normalised) if normalised else None

    def departments(self) -> tuple[Department, ...]:
        """The 101 departments, in INSEE code order."""
        return tuple(self._departments.values())

    def department(self, code: str | None) -> Department | None:
        """A department by its code as sources write it ('5', '05', '2a', '974')."""
        normalised = _department_code(code)
        return self._departments.get(normalised) if normalised else None

    def department_by_name(self, name: str | None) -> Department | None:
        """A department by its name, ignoring accents, case, hyphens, apostrophes and a leading article:
        'cotes d armor', 'Côtes-d’Armor', 'Réunion'."""
        return self._departments_by_name.get(_name_key(name or ""))

    def regions(self) -> tuple[Region, ...]:
        """The 18 regions, in INSEE code order."""
        return tuple(self._regions.values())

    def region(self, code: str | None) -> Region | None:
        """A region by its INSEE code: '76' -> Region('76', 'Occitanie')."""
        return self._regions.get((code or "").strip())

    def region_by_name(self, name: str | None) -> Region | None:
        """A region by its name, ignoring accents, case, hyphens and a leading article."""
        return self._regions_by_name.get(_name_key(name or ""))

    def country(self, raw: str | None) -> str | None:
        """ISO 3166-1 alpha-2 code of a country written in alpha-3 ('FRA') or alpha-2 ('fr'); None if unknown."""
        code = (raw or "").strip().upper()
        if len(code) == 3:
            return self._alpha3_to_alpha2.get(code)
        code = _NUTS_COUNTRY_EXCEPTIONS.get(code, code)
        return code if code in self._alpha2 else None

    def nuts_country(self, nuts: str | None) -> str | None:
        """The country of a NUTS code of any level and version: 'FRJ12' -> 'FR', 'EL303' -> 'GR', 'DE915' (NUTS 2016
        only) -> 'DE'; None when the prefix is not a country with NUTS codes."""
        code = _nuts_code(nuts)
        if code is None:
            return None
        known = self._nuts.get(code)
        if known is not None:
            return known.country
        prefix = code[:2]
        return _NUTS_COUNTRY_EXCEPTIONS.get(prefix, prefix) if prefix in self._nuts_prefixes else None

    def locate_nuts(self, nuts: str | None) -> Location:
        code = _nuts_code(nuts)
        if code is None:
            return Location()
        departments = sorted(self._nuts_departments.get(code, set())) if len(code) >= 3 else []
        return self._location(departments, self.nuts_country(code))

    def postal_code_department(self, postal_code: str | None) -> str | None:
        """The department of a French postal code: 31000 -> '31', 20090 -> '2A', 97400 -> '974'."""
        code = "".join((postal_code or "").split())
        if not _POSTAL_CODE.match(code):
            return None
        if code.startswith("20"):
            # Corsica shares the '20' prefix: 200xx-201xx is Corse-du-Sud, 202xx and 206xx Haute-Corse.
            department = "2A" if code[2] in "01" else "2B" if code[2] in "26" else None
        elif code.startswith("97"):
            department = code[:3]
        else:
            department = code[:2]
        return department if department in self._departments else None

    def locate_postal_code(self, postal_code: str | None, country: str | None = None) -> Location:
        """Location of a postal code, read as French when the country is France or not given."""
        country_code = self.country(country)
        if country_code is not None and country_code != "FR":
            return self._location([], country_code)
        department = self.postal_code_department(postal_code)
        return self._location([department] if department else [], "FR" if department else None)

    def locate_department(self, raw: str | None) -> Location:
        """A French department code as sources write it ('5', '05', '2a', '974') -> that department."""
        department = self.department(raw)
        return self._location([department.code], "FR") if department else Location()

    def locate(
        self, *, nuts: str | None, postal_code: str | None, country: str | None, department: str | None = None
    ) -> Location:
        """Where an address or a place is: from its NUTS code, else its department, else its postal code, else its
        country alone."""
        country_code = self.country(country) or self.nuts_country(nuts)
        candidates = (
            self.locate_nuts(nuts),
            self.locate_department(department),
            self.locate_postal_code(postal_code, country),
        )
        for located in candidates:
            if located.departments:
                return located | self._location([], country_code)
        return self._location([], country_code)

    def locate_notice(self, places: Sequence[Place], buyer_address: Address | None) -> tuple[Location, GeographySource]:
        """Where a notice is performed: its places (all of them, merged) when they locate anything, else the buyer's
        address, flagged as such because the work may be done elsewhere; else nowhere."""
        location = Location()
        for place in places:
            location = location | self.locate(
                nuts=place.nuts, postal_code=place.postal_code, country=place.country, department=place.department
            )
        if not location.is_empty:
            return location, GeographySource.PLACES
        if buyer_address is not None:
            location = self.locate(
                nuts=buyer_address.nuts,
                postal_code=buyer_address.postal_code,
                country=buyer_address.country,
                department=buyer_address.department,
            )
            if not location.is_empty:
                return location, GeographySource.BUYER
        return Location(), GeographySource.NONE

    def _location(self, departments: list[str], country: str | None) -> Location:
        regions = sorted({self._departments[code].region for code in departments})
        return Location(tuple(departments), tuple(regions), (country,) if country else ())


def _joined_departments(
    nuts3_names: dict[str, str], departments_by_name: dict[str, str], nuts_file: str, departments_file: str
) -> dict[str, str]:
    """NUTS-3 code -> department code, joined on names; every department must get exactly one code."""
    joined: dict[str, str] = {}
    for nuts_code, name in nuts3_names.items():
        department = departments_by_name.get(_name_key(name))
        if department is None:
            raise ValueError(
                f"{nuts_file}: NUTS {nuts_code} ({name}) matches no department of {departments_file}; "
                "the two lists are out of step, update both files together"
            )
        joined[nuts_code] = department
    unmatched = sorted(set(departments_by_name.values()) - set(joined.values()))
    if unmatched or len(set(joined.values())) != len(joined):
        raise ValueError(
            f"{nuts_file} must give each department of {departments_file} one NUTS-3 code; "
            f"without one: {', '.join(unmatched) or 'none'}, codes: {len(joined)}"
        )
    return joined


def _nuts_code(raw: str | None) -> str | None:
    code = "".join((raw or "").split()).upper()
    return code if _NUTS_SHAPE.match(code) else None


def _department_code(raw: str | None) -> str | None:
    code = (raw or "").strip().upper()
    return "0" + code if len(code) == 1 and code.isdigit() else code or None


def _name_key(name: str) -> str:
    """A place name without accents, case, punctuation or leading article: 'La Côte-d’Or' -> 'cote d or'."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return _LEADING_ARTICLE.sub("", re.sub(r"[^a-z0-9]+", " ", bare).strip())


def _by_name_key(named: Iterable[tuple[str, _Value]]) -> dict[str, _Value]:
    return {_name_key(name): value for name, value in named}


def _merged(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(first) | set(second)))


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))
