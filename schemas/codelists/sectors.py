"""Our sector taxonomy: 22 activity sectors defined as sets of CPV prefixes (`data/sectors.json`).

Rule: a CPV code belongs to every sector one of whose prefixes it starts with, so a code may fall in several
sectors (45233140, road surfacing, is civil engineering only; 45000000, construction in general, is both building
and civil engineering; 79952000, event organisation, is both consulting and events). No sector outranks another:
subscribers of either should hear of the notice. A prefix of 8 digits names one generic code, which lets a division
split between sectors (45, 65, 75, 90…) still send its generic code to each. Every one of the 9,454 CPV 2008 codes
falls in at least one sector; there is no catch-all sector.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.codelists.data import data_file

_DATA_FILE = "sectors.json"
_SLUG = re.compile(r"^[a-z]+(?:-[a-z]+)*$")
_PREFIX = re.compile(r"^\d{2,8}$")


@dataclass(frozen=True)
class Sector:
    id: str
    label_fr: str
    label_en: str
    cpv_prefixes: tuple[str, ...]

    def covers(self, cpv_code: str) -> bool:
        return any(cpv_code.startswith(prefix) for prefix in self.cpv_prefixes)


class SectorTaxonomy:
    """The sectors, in the order of the data file, and the CPV → sector lookup."""

    def __init__(self, sectors: list[Sector]) -> None:
        ids = [sector.id for sector in sectors]
        duplicates = sorted({sector_id for sector_id in ids if ids.count(sector_id) > 1})
        if duplicates:
            raise ValueError(f"sector ids must be unique; repeated: {', '.join(duplicates)}")
        self._sectors = tuple(sectors)
        self._by_id = {sector.id: sector for sector in sectors}

    @classmethod
    def load(cls) -> SectorTaxonomy:
        """The taxonomy shipped with the classifier."""
        return cls.from_json(data_file(_DATA_FILE))

    @classmethod
    def from_json(cls, path: Path) -> SectorTaxonomy:
        document = json.loads(path.read_text(encoding="utf-8"))
        return cls([_sector(item, path.name) for item in document["sectors"]])

    @property
    def sectors(self) -> tuple[Sector, ...]:
        return self._sectors

    def get(self, sector_id: str) -> Sector | None:
        return self._by_id.get(sector_id)

    def sectors_of(self, cpv_codes: list[str]) -> list[str]:
        """Ids of the sectors covering any of the 8-digit `cpv_codes`, in taxonomy order.

        A code no sector covers (one outside CPV 2008, kept for its division) counts as its division's generic code,
        which every taxonomy covers: it still says what trade the notice is about.
        """
        covered = [code if self._covered(code) else code[:2] + "000000" for code in cpv_codes]
        return [sector.id for sector in self._sectors if any(sector.covers(code) for code in covered)]

    def _covered(self, cpv_code: str) -> bool:
        return any(sector.covers(cpv_code) for sector in self._sectors)


def _sector(item: dict[str, Any], source: str) -> Sector:
    sector_id = str(item.get("id", ""))
    if not _SLUG.match(sector_id):
        raise ValueError(f"{source}: sector id {sector_id!r} must be a lower-case slug such as 'travaux-publics'")
    prefixes = tuple(str(prefix) for prefix in item.get("cpv_prefixes", []))
    bad = [prefix for prefix in prefixes if not _PREFIX.match(prefix)]
    if not prefixes or bad:
        raise ValueError(f"{source}: sector {sector_id!r} needs CPV prefixes of 2 to 8 digits; got {list(prefixes)}")
    label_fr, label_en = str(item.get("label_fr", "")).strip(), str(item.get("label_en", "")).strip()
    if not label_fr or not label_en:
        raise ValueError(f"{source}: sector {sector_id!r} needs both label_fr and label_en")
    return Sector(sector_id, label_fr, label_en, prefixes)
