"""Geography: NUTS codes, French postal codes and country codes -> departments, regions and countries.

French NUTS-3 regions are the departments. The eForms list of French NUTS-3 codes (NUTS 2021, identical to
NUTS 2016 for France) is joined to the INSEE list of departments on their names, ignoring accents, case and
hyphens; every department must match. A shorter NUTS code (FRJ, FRJ2) stands for all the NUTS-3 codes under it,
so for all their departments and regions. A country-level or Extra-Regio code (FR, FRZZZ) gives the country only.
Codes of older NUTS versions (FR623 of NUTS 2013) are not in the list and give the country only.
"""

from __future__ import annotations

import csv
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from services.classifier.data import data_file

_NUTS_FILE = "nuts_nuts-fra-lvl3.gc"
_DEPARTMENTS_FILE = "cog-departments@2025.csv"
_REGIONS_FILE = "cog-regions@2025.csv"
_COUNTRIES_FILE = "countries.csv"

# NUTS writes Greece and the United Kingdom with the EU's own abbreviations, not ISO 3166-1.
_NUTS_COUNTRY_EXCEPTIONS = {"EL": "GR", "UK": "GB"}
_NUTS_SHAPE = re.compile(r"^[A-Z]{2}[0-9A-Z]{0,3}$")
_POSTAL_CODE = re.compile(r"^\d{5}$")


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
    code: str
    name: str
    region: str


class Geography:
    """French departments and regions, the NUTS codes that name them, and ISO country codes; loaded once."""

    def __init__(
        self,
        departments: dict[str, Department],
        region_names: dict[str, str],
        nuts3_departments: dict[str, str],
        alpha3_to_alpha2: dict[str, str],
    ) -> None:
        self._departments = departments
        self._region_names = region_names
        self._nuts3_departments = nuts3_departments
        self._alpha3_to_alpha2 = alpha3_to_alpha2
        self._alpha2 = frozenset(alpha3_to_alpha2.values())
        # Every prefix of a NUTS-3 code, down to NUTS-1 (FRJ), names the departments under it.
        self._nuts_departments: dict[str, set[str]] = {}
        for nuts3, department in nuts3_departments.items():
            for length in (3, 4, 5):
                self._nuts_departments.setdefault(nuts3[:length], set()).add(department)

    @classmethod
    def load(cls) -> Geography:
        """The geography shipped with the classifier."""
        return cls.from_files(
            nuts_fr_level3=data_file(_NUTS_FILE),
            departments=data_file(_DEPARTMENTS_FILE),
            regions=data_file(_REGIONS_FILE),
            countries=data_file(_COUNTRIES_FILE),
        )

    @classmethod
    def from_files(cls, *, nuts_fr_level3: Path, departments: Path, regions: Path, countries: Path) -> Geography:
        department_rows = _csv_rows(departments)
        by_code = {
            row["code"]: Department(code=row["code"], name=row["name"], region=row["region_code"])
            for row in department_rows
        }
        by_name = {_name_key(row["single_name"]): row["code"] for row in department_rows}
        nuts3_departments: dict[str, str] = {}
        for nuts_code, french_label in _genericode_labels(nuts_fr_level3, "fra_label").items():
            if nuts_code.endswith("ZZZ"):
                continue  # Extra-Regio: not a place in France
            department = by_name.get(_name_key(french_label))
            if department is None:
                raise ValueError(
                    f"{nuts_fr_level3.name}: NUTS {nuts_code} ({french_label}) matches no department of "
                    f"{departments.name}; the two lists are out of step, update both files together"
                )
            nuts3_departments[nuts_code] = department
        unmatched = sorted(set(by_code) - set(nuts3_departments.values()))
        if unmatched:
            raise ValueError(f"departments without a NUTS-3 code in {nuts_fr_level3.name}: {', '.join(unmatched)}")
        region_names = {row["code"]: row["name"] for row in _csv_rows(regions)}
        alpha3_to_alpha2 = {row["alpha3"]: row["alpha2"] for row in _csv_rows(countries)}
        return cls(by_code, region_names, nuts3_departments, alpha3_to_alpha2)

    def nuts3_departments(self) -> dict[str, str]:
        """French NUTS-3 code -> INSEE department code (FRJ23 -> '31')."""
        return dict(self._nuts3_departments)

    def department(self, code: str) -> Department | None:
        return self._departments.get(code)

    def region_name(self, code: str) -> str | None:
        return self._region_names.get(code)

    def country(self, raw: str | None) -> str | None:
        """ISO 3166-1 alpha-2 code of a country written in alpha-3 ('FRA') or alpha-2 ('fr'); None if unknown."""
        code = (raw or "").strip().upper()
        if len(code) == 3:
            return self._alpha3_to_alpha2.get(code)
        code = _NUTS_COUNTRY_EXCEPTIONS.get(code, code)
        return code if code in self._alpha2 else None

    def nuts_country(self, nuts: str | None) -> str | None:
        """The country of a NUTS code of any level: 'FRJ12' -> 'FR', 'EL303' -> 'GR'."""
        code = _nuts_code(nuts)
        return self.country(code[:2]) if code else None

    def locate_nuts(self, nuts: str | None) -> Location:
        code = _nuts_code(nuts)
        if code is None:
            return Location()
        country = self.country(code[:2])
        departments = sorted(self._nuts_departments.get(code, set())) if len(code) >= 3 else []
        return self._location(departments, country)

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
        code = (raw or "").strip().upper()
        if len(code) == 1 and code.isdigit():
            code = "0" + code
        if code not in self._departments:
            return Location()
        return self._location([code], "FR")

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

    def _location(self, departments: list[str], country: str | None) -> Location:
        regions = sorted({self._departments[code].region for code in departments})
        return Location(tuple(departments), tuple(regions), (country,) if country else ())


def _nuts_code(raw: str | None) -> str | None:
    code = "".join((raw or "").split()).upper()
    return code if _NUTS_SHAPE.match(code) else None


def _name_key(name: str) -> str:
    """A department name without accents, case or punctuation: 'Côtes-d'Armor' -> 'cotes d armor'."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return re.sub(r"[^a-z0-9]+", " ", bare).strip()


def _merged(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(first) | set(second)))


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _genericode_labels(path: Path, column: str) -> dict[str, str]:
    """Code -> label in `column` of an OASIS genericode code list."""
    # A bundled, trusted code list of the eForms SDK read from the package; no untrusted XML reaches this parser.
    tree = ET.parse(path)  # noqa: S314
    labels: dict[str, str] = {}
    for row in tree.iter("Row"):
        values = {value.get("ColumnRef"): (value.findtext("SimpleValue") or "").strip() for value in row.iter("Value")}
        code, label = values.get("code"), values.get(column)
        if code and label:
            labels[code] = label
    return labels
