"""Parsing and classifying the real eForms fixtures, against the raw XML parse as baseline."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from bench._table import Row, per_second
from services.classifier.classify import Classifier
from services.ingest.sources import parse_document

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures" / "eforms"


def documents() -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIXTURES.rglob("*.xml"))]


def run() -> list[Row]:
    docs = documents()
    now = datetime.now(UTC)

    def raw_parse() -> int:
        for data in docs:
            etree.fromstring(data)  # trusted fixtures: the baseline only
        return len(docs)

    def full_parse() -> int:
        for data in docs:
            parse_document(data)
        return len(docs)

    classifier = Classifier.load()
    notices = [notice for d in docs for notice in parse_document(d)]

    def classify() -> int:
        for notice in notices:
            classifier.classify(notice, now=now)
        return len(notices)

    def model_copy() -> int:
        for notice in notices:
            type(notice).model_validate(notice.model_dump())
        return len(notices)

    raw = per_second(raw_parse)
    return [
        Row("eForms XML -> Notice (37 real notices)", per_second(full_parse), "docs/s", "lxml parse only", raw),
        Row("classify a Notice", per_second(classify), "notices/s", "pydantic dump+validate", per_second(model_copy)),
    ]
