"""Derive `nuts.csv` (every NUTS 2021 code: country, level, name) from the eForms NUTS code list.

Usage:
    python schemas/codelists/data/_derive_nuts.py NUTS_GC > nuts.csv

NUTS_GC is `codelists/nuts.gc` of the eForms SDK (NUTS 2021, 938 kB with labels in 24 languages). The output keeps
the code, the ISO 3166-1 alpha-2 code of its country (NUTS writes Greece `EL` and the United Kingdom `UK`), its
level (0 for a country, 1 to 3 below it) and its name in its own country's language (the list's `Name` column).
"""

from __future__ import annotations

import csv
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

_NUTS_COUNTRY_EXCEPTIONS = {"EL": "GR", "UK": "GB"}


def _rows(nuts_gc: Path) -> list[tuple[str, str, int, str]]:
    # A published code list from the eForms SDK, read from a local file given on the command line.
    tree = ET.parse(nuts_gc)  # noqa: S314
    rows = []
    for row in tree.iter("Row"):
        values = {value.get("ColumnRef"): (value.findtext("SimpleValue") or "") for value in row.iter("Value")}
        code = values["code"].strip()
        # Some names end in a no-break space; " ".join(split()) drops it with any other stray blank.
        name = " ".join(values.get("Name", "").split())
        country = _NUTS_COUNTRY_EXCEPTIONS.get(code[:2], code[:2])
        rows.append((code, country, len(code) - 2, name))
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["code", "country", "level", "name"])
    for code, country, level, name in sorted(_rows(Path(argv[0]))):
        if not 0 <= level <= 3:
            print(f"NUTS code {code!r} has no level between 0 and 3; is the input a NUTS code list?", file=sys.stderr)
            return 1
        writer.writerow([code, country, level, name])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
