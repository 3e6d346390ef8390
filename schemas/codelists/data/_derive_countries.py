"""Derive `countries.csv` (ISO 3166-1 alpha-3 -> alpha-2) from two published code lists.

Usage:
    python schemas/codelists/data/_derive_countries.py ISO_3166_1_JSON COUNTRY_GC > countries.csv

ISO_3166_1_JSON is `data/iso_3166-1.json` of the iso-codes project (Debian package `iso-codes`, installed as
/usr/share/iso-codes/json/iso_3166-1.json); COUNTRY_GC is `codelists/country.gc` of the eForms SDK. The eForms
list is the set of alpha-3 codes notices actually carry: every one of them must get an alpha-2 code, and the two
codes eForms uses outside ISO 3166-1 get the alpha-2 code the EU institutions use for them.
"""

from __future__ import annotations

import csv
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

# Codes of the eForms list that ISO 3166-1 does not assign; the alpha-2 forms are those of the EU's
# Interinstitutional Style Guide (Kosovo) and the ISO 3166 exceptional reservation (Clipperton).
_OUTSIDE_ISO = {"XKX": ("XK", "Kosovo"), "CPT": ("CP", "Clipperton")}


def _iso_rows(iso_json: Path) -> dict[str, tuple[str, str]]:
    entries = json.loads(iso_json.read_text(encoding="utf-8"))["3166-1"]
    return {entry["alpha_3"]: (entry["alpha_2"], entry["name"]) for entry in entries}


def _eforms_codes(country_gc: Path) -> list[str]:
    # A published code list from the eForms SDK, read from a local file given on the command line.
    tree = ET.parse(country_gc)  # noqa: S314
    codes = []
    for row in tree.iter("Row"):
        for value in row.iter("Value"):
            if value.get("ColumnRef") == "code":
                codes.append((value.findtext("SimpleValue") or "").strip())
    return codes


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    rows = _iso_rows(Path(argv[0]))
    eforms = _eforms_codes(Path(argv[1]))
    for code in eforms:
        if code not in rows:
            if code not in _OUTSIDE_ISO:
                print(f"eForms country {code} has no ISO 3166-1 alpha-2 code; add it to _OUTSIDE_ISO", file=sys.stderr)
                return 1
            rows[code] = _OUTSIDE_ISO[code]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["alpha3", "alpha2", "name"])
    for alpha3 in sorted(rows):
        alpha2, name = rows[alpha3]
        writer.writerow([alpha3, alpha2, name])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
