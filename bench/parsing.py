"""Parsing every real fixture of each source format, and classifying, against raw parsing as baseline.

Also writes `bench/results/ingest.json`: notices per second on one core, per format.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from bench._table import Row, per_second, run_facts
from services.classifier.classify import Classifier
from services.ingest.sources import parse_document

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures"
RESULTS = Path(__file__).parent / "results" / "ingest.json"

# format -> (fixture folder, file pattern, baseline name, baseline parse)
_FORMATS = {
    "eforms": ("eforms", "*.xml", "lxml parse only", lambda data: etree.fromstring(data)),  # trusted fixtures
    "ocds": ("ocds", "*.json", "json.loads only", json.loads),
    "boamp": ("boamp/xml-v230", "*.xml", "lxml parse only", lambda data: etree.fromstring(data)),  # trusted
}


def _documents(folder: str, pattern: str) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted((FIXTURES / folder).rglob(pattern))]


def run() -> list[Row]:
    rows: list[Row] = []
    results: dict[str, object] = {
        **run_facts(),
        "unit": "notices per second on one core",
        "formats": {},
    }
    all_notices = []
    for name, (folder, pattern, baseline_name, baseline) in _FORMATS.items():
        documents = _documents(folder, pattern)
        if not documents:
            continue
        notices_per_round = sum(len(parse_document(data, filename=path.name)) for path, data in documents)

        def parse(documents: list[tuple[Path, bytes]] = documents, count: int = notices_per_round) -> int:
            for path, data in documents:
                parse_document(data, filename=path.name)
            return count

        def raw(
            documents: list[tuple[Path, bytes]] = documents, count: int = notices_per_round, baseline: Any = baseline
        ) -> int:
            for _path, data in documents:
                baseline(data)
            return count

        rate, raw_rate = per_second(parse), per_second(raw)
        rows.append(
            Row(f"{name} -> Notice ({len(documents)} files, {notices_per_round} notices)", rate, "notices/s",
                baseline_name, raw_rate)
        )  # fmt: skip
        results["formats"][name] = {  # type: ignore[index]
            "files": len(documents),
            "notices": notices_per_round,
            "notices_per_second": round(rate, 1),
            "baseline": baseline_name,
            "baseline_notices_per_second": round(raw_rate, 1),
        }
        all_notices += [n for path, data in documents for n in parse_document(data, filename=path.name)]

    classifier = Classifier.load()
    now = datetime.now(UTC)

    def classify() -> int:
        for notice in all_notices:
            classifier.classify(notice, now=now)
        return len(all_notices)

    def model_copy() -> int:
        for notice in all_notices:
            type(notice).model_validate(notice.model_dump())
        return len(all_notices)

    rows.append(
        Row("classify a Notice", per_second(classify), "notices/s", "pydantic dump+validate", per_second(model_copy))
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return rows
