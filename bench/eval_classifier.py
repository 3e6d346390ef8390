"""How well CPV inference finds the codes real notices publish, with their codes hidden.

Every real notice of the fixtures (eForms, BOAMP XML, OCDS) that publishes a CPV code is read, its code is hidden
and inferred from its title and description; a prediction is right at division level when its first two digits are
those of the notice's main code, at group level when its first three are (measured only on main codes finer than a
division). Notices repeating the same text and code (one fixture copied into several examples) count once.
Baseline, same run: always predicting the most frequent divisions (groups) of the evaluated notices themselves, an
optimistic baseline since it knows their distribution.

Writes `bench/results/classifier.json` and prints a table. Run: `python -m bench.eval_classifier` or `make eval`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench._table import Row, print_table, run_facts
from schemas.notice import Notice
from services.classifier.inference import CpvInferrer, texts_for_inference
from services.ingest.sources import parse_document

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures"
RESULTS = Path(__file__).parent / "results" / "classifier.json"

_SOURCES = (("eforms", "eforms", "*.xml"), ("boamp", "boamp/xml-v230", "*.xml"), ("ocds", "ocds", "*.json"))
_K = 5


@dataclass(frozen=True)
class _Case:
    source: str
    file: str
    language: str  # of the text inferred from
    truth: str  # the notice's main CPV code
    predicted: tuple[str, ...]  # best first
    confidence: float  # of the first prediction, 0 when nothing was inferred


def _notices() -> list[tuple[str, str, Notice]]:
    found = []
    for source, folder, pattern in _SOURCES:
        for path in sorted((FIXTURES / folder).rglob(pattern)):
            for notice in parse_document(path.read_bytes(), filename=path.name):
                found.append((source, str(path.relative_to(FIXTURES)), notice))
    return found


def _hit(case: _Case, digits: int, top: int) -> bool:
    return any(code[:digits] == case.truth[:digits] for code in case.predicted[:top])


def _accuracy(cases: list[_Case], digits: int, top: int) -> float:
    return 100.0 * sum(_hit(case, digits, top) for case in cases) / len(cases) if cases else 0.0


def _baseline(cases: list[_Case], digits: int, top: int) -> float:
    frequent = {prefix for prefix, _count in Counter(c.truth[:digits] for c in cases).most_common(top)}
    return 100.0 * sum(case.truth[:digits] in frequent for case in cases) / len(cases) if cases else 0.0


def _scores(cases: list[_Case]) -> dict[str, object]:
    grouped = [case for case in cases if len(case.truth.rstrip("0")) >= 3]
    levels: dict[str, object] = {}
    for level, digits, subset in (("division", 2, cases), ("group", 3, grouped)):
        levels[level] = {
            "notices": len(subset),
            "top1": round(_accuracy(subset, digits, 1), 1),
            "top5": round(_accuracy(subset, digits, _K), 1),
            "baseline_top1": round(_baseline(subset, digits, 1), 1),
            "baseline_top5": round(_baseline(subset, digits, _K), 1),
        }
    answered = [case for case in cases if case.predicted]
    levels["answered"] = len(answered)
    # Calibration: the mean confidence of the first code against how often its division is right.
    levels["mean_top1_confidence"] = round(sum(c.confidence for c in answered) / len(answered), 3) if answered else 0
    return levels


def _evaluate(inferrer: CpvInferrer) -> tuple[list[_Case], int, float]:
    cases: dict[tuple[str, str | None, str], _Case] = {}
    notices = [(source, file, notice) for source, file, notice in _notices() if notice.all_cpv()]
    elapsed = 0.0
    for source, file, notice in notices:
        truth = notice.cpv_main or notice.all_cpv()[0]
        title, description, language = texts_for_inference(notice)  # reads no CPV: nothing to hide beyond this
        started = time.perf_counter()
        candidates = inferrer.infer(title, description, language, k=_K)
        elapsed += time.perf_counter() - started
        key = (title, description, truth)
        if key not in cases:
            cases[key] = _Case(
                source,
                file,
                language,
                truth,
                tuple(c.code for c in candidates),
                candidates[0].confidence if candidates else 0.0,
            )
    return list(cases.values()), len(notices), 1000.0 * elapsed / max(1, len(notices))


def run() -> list[Row]:
    started = time.perf_counter()
    inferrer = CpvInferrer.load()
    load_seconds = time.perf_counter() - started
    cases, notices, ms_per_notice = _evaluate(inferrer)
    subsets = {
        "all": cases,
        "fr": [c for c in cases if c.language == "fr"],
        "en": [c for c in cases if c.language == "en"],
        "fr+en": [c for c in cases if c.language in ("fr", "en")],
        "other languages": [c for c in cases if c.language not in ("fr", "en")],
    }
    results = {
        **run_facts(),
        "notices_with_cpv": notices,
        "distinct_texts": len(cases),
        "k": _K,
        "load_seconds": round(load_seconds, 3),
        "ms_per_notice": round(ms_per_notice, 2),
        "baseline": "most frequent divisions (groups) of the evaluated notices",
        "accuracy_percent": {name: _scores(subset) for name, subset in subsets.items()},
        "by_source": {source: _scores([c for c in cases if c.source == source]) for source, _f, _p in _SOURCES},
        "misses_top1_division_fr_en": [
            {"file": c.file, "language": c.language, "truth": c.truth, "predicted": list(c.predicted[:3])}
            for c in subsets["fr+en"]
            if not _hit(c, 2, 1)
        ],
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    rows = []
    for name in ("fr", "fr+en", "all"):
        subset = subsets[name]
        for level, digits in (("division", 2), ("group", 3)):
            scored = subset if digits == 2 else [c for c in subset if len(c.truth.rstrip("0")) >= 3]
            for top in (1, _K):
                rows.append(
                    Row(
                        f"CPV inference {level} top-{top}, {name} (n={len(scored)})",
                        _accuracy(scored, digits, top),
                        "%",
                        f"most frequent {level}{'s' if top > 1 else ''}",
                        _baseline(scored, digits, top),
                    )
                )
    return rows


def main() -> int:
    rows = run()
    print_table(rows)
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    print(
        f"{results['distinct_texts']} distinct texts from {results['notices_with_cpv']} notices with a CPV code; "
        f"load {results['load_seconds']} s, {results['ms_per_notice']} ms per notice; written to {RESULTS.name}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
