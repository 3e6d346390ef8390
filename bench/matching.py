"""The matcher's index against the brute-force scan, on real CPV codes and French geography."""

from __future__ import annotations

import random
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench._table import Row
from schemas import ClassifiedNotice, Subscription
from services.classifier.classify import Classifier
from services.classifier.cpv import CpvVocabulary
from services.ingest.sources import parse_document
from services.matcher.index import SubscriptionIndex, brute_force_match

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures" / "eforms"
_NOW = datetime(2026, 1, 5, tzinfo=UTC)
_WORDS = ("voirie", "nettoyage", "collecte", "maîtrise d'œuvre", "assainissement", "informatique", "école",
          "restauration", "transport scolaire", "éclairage public", "déchets", "chauffage", "lycée")  # fmt: skip
_DEPARTMENTS = [f"{n:02d}" for n in range(1, 96) if n != 20] + ["2A", "2B", "971", "972", "973", "974", "976"]
_REGIONS = ["11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94"]


def notices() -> list[ClassifiedNotice]:
    classifier = Classifier.load()
    return [
        classifier.classify(notice, now=_NOW)
        for path in sorted(FIXTURES.rglob("*.xml"))
        for notice in parse_document(path.read_bytes())
    ]


def subscriptions(count: int, cpv_pool: list[str], seed: int = 7) -> list[Subscription]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        filters: dict[str, object] = {}
        if rng.random() < 0.8:
            filters["cpv"] = [c[: rng.choice((2, 3, 4, 5))].ljust(8, "0") for c in rng.sample(cpv_pool, 2)]
        if rng.random() < 0.5:
            filters["departments"] = rng.sample(_DEPARTMENTS, rng.randint(1, 4))
        elif rng.random() < 0.5:
            filters["regions"] = rng.sample(_REGIONS, 1)
        if rng.random() < 0.3:
            filters["keywords"] = {"any": rng.sample(_WORDS, 2)}
        if rng.random() < 0.3:
            filters["kinds"] = [rng.choice(["planning", "competition", "result"])]
        out.append(
            Subscription.model_validate(
                {
                    "subscription_id": f"s{n}",
                    "subscriber_id": f"a{n % (count // 3 + 1)}",
                    "name": f"veille {n}",
                    "filters": filters,
                    "delivery": {"email": f"veille{n}@example.org"},
                    "created_at": _NOW,
                    "updated_at": _NOW,
                }
            )
        )
    return out


def _per_notice(match: Callable[[ClassifiedNotice], object], sample: list[ClassifiedNotice]) -> float:
    started, rounds = time.perf_counter(), 0
    while time.perf_counter() - started < 1.0:
        for notice in sample:
            match(notice)
        rounds += 1
    return (time.perf_counter() - started) / (rounds * len(sample)) * 1e6


def run() -> list[Row]:
    sample = notices()
    # Subscribers pick their codes anywhere in the real CPV list, at every level from division to code.
    cpv_pool = sorted(CpvVocabulary.load())
    rows = []
    for count in (1_000, 10_000, 50_000):
        subs = subscriptions(count, cpv_pool)
        tracemalloc.start()
        index = SubscriptionIndex()
        for sub in subs:
            index.upsert(sub)
        memory_mib = tracemalloc.get_traced_memory()[0] / 2**20
        tracemalloc.stop()
        matched = 0
        for notice in sample:  # the index must agree with the reference before it is timed
            fast = {(h.subscription.subscription_id, h.reasons) for h in index.match(notice)}
            slow = {(h.subscription.subscription_id, h.reasons) for h in brute_force_match(subs, notice)}
            assert fast == slow, f"index and brute force disagree on {notice.notice_id}"
            matched += len(fast)
        indexed = _per_notice(index.match, sample)
        brute = _per_notice(lambda n, subs=subs: brute_force_match(subs, n), sample[:5])  # type: ignore[misc]
        rows.append(Row(f"match one notice, {count:,} subscriptions", indexed, "µs", "brute-force scan", brute, False))
        rows.append(
            Row(f"index memory, {count:,} subscriptions", memory_mib, "MiB", "(no baseline)", memory_mib, False)
        )
        per_notice = matched / len(sample)
        rows.append(Row(f"matches per notice, {count:,} subs", per_notice, "", "(no baseline)", per_notice, False))
    return rows
