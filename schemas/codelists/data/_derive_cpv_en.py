"""Derive `cpv_2008_en.csv` (the English labels of the CPV 2008 codes) from a published English CPV tree.

Usage:
    python schemas/codelists/data/_derive_cpv_en.py CPV_EN_TREE_JSON > schemas/codelists/data/cpv_2008_en.csv

CPV_EN_TREE_JSON is `cpv_en.json` of `PierreMesure/ted-archive-downloader`: the CPV 2008 in English as a nested
tree of `{"cpv": "03000000", "name": "...", "children": [...]}`. The tree was built from parent links, so it lacks
the 38 codes whose parent code is not itself published (e.g. 60112000, whose parent 60110000 does not exist);
their labels come from `product_code_cpv/data/product_template_cpv.xml` of `OCA/product-attribute` and are
written out below. The output lists the codes of the bundled `cpv_2008_fr.csv`, in its order, as `code,label`
with 8-digit codes; the script stops if a code lacks a label or if the tree holds a code outside that list.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

# Labels missing from the tree, from OCA/product-attribute commit 1a9474bb0e0503047da6ec0b385e241e5d5131e8.
_MISSING_FROM_TREE = {
    "34511100": "Marine patrol vessels",
    "35611100": "Fighter aircrafts",
    "35611200": "Fighter-bomber/ground attack aircrafts",
    "35611300": "Bomber aircrafts",
    "35611400": "Military transport aircrafts",
    "35611500": "Training aircrafts",
    "35611600": "Maritime patrol aircrafts",
    "35611700": "Tanker aircrafts",
    "35611800": "Reconnaissance aircrafts",
    "35612100": "Combat helicopters",
    "35612200": "Anti submarine warfare helicopters",
    "35612300": "Support helicopters",
    "35612400": "Military transport helicopters",
    "35612500": "Search and rescue helicopters",
    "35811100": "Fire-brigade uniforms",
    "35811200": "Police uniforms",
    "35811300": "Military uniforms",
    "38527100": "Ionization chamber dosimeters",
    "38527200": "Dosimeters",
    "38527300": "Secondary standard dosimetry systems",
    "38527400": "Phantom dosimeters",
    "39254000": "Horology",
    "39254100": "Clocks",
    "39254110": "Alarm clocks",
    "39254120": "Wall clocks",
    "39254130": "Glass for clocks",
    "42924200": "Steam or sand blasting machines",
    "42924300": "Spraying equipment",
    "42924310": "Spray guns",
    "42924700": "Mechanical appliances for projecting, dispersing or spraying",
    "42924710": "Gas-dispersing apparatus",
    "42924720": "Decontamination equipment",
    "42924730": "Pressurised water cleaning apparatus",
    "42924740": "High-pressure cleaning apparatus",
    "42924790": "Odour-masking apparatus",
    "44115310": "Roller-type shutters",
    "44613110": "Silos",
    "60112000": "Public road transport services",
}


def _tree_labels(nodes: list[dict[str, Any]] | None, labels: dict[str, str]) -> dict[str, str]:
    # A leaf repeats its own code as its only child, hence the plain overwrite.
    for node in nodes or []:
        labels[str(node["cpv"])] = str(node["name"]).strip()
        _tree_labels(node.get("children"), labels)
    return labels


def _codes_in_order() -> list[str]:
    with (Path(__file__).parent / "cpv_2008_fr.csv").open(encoding="utf-8", newline="") as handle:
        return [row["CODE"][:8] for row in csv.DictReader(handle)]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    labels = _tree_labels(json.loads(Path(argv[0]).read_text(encoding="utf-8")), {})
    codes = _codes_in_order()
    outside = sorted(set(labels) - set(codes))
    if outside:
        print(
            f"the tree has {len(outside)} codes outside CPV 2008, e.g. {outside[0]}; check the input", file=sys.stderr
        )
        return 1
    labels = {**_MISSING_FROM_TREE, **labels}
    missing = [code for code in codes if not labels.get(code)]
    if missing:
        print(
            f"{len(missing)} codes have no English label, e.g. {missing[0]}; add them to _MISSING_FROM_TREE",
            file=sys.stderr,
        )
        return 1
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["code", "label"])
    for code in codes:
        writer.writerow([code, labels[code]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
