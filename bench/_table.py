"""Timing and the printed table shared by the benchmarks."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def run_facts() -> dict[str, Any]:
    """When and on what a benchmark ran: the first keys of every `bench/results/*.json`."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def percentile(values: Iterable[float], share: float) -> float:
    """Nearest-rank percentile (`share` 0.99 for p99); NaN when there is no value."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else math.nan


def distribution(samples: Iterable[float]) -> dict[str, float]:
    """p50, p99, max and mean of `samples` (at least one)."""
    ordered = sorted(samples)
    return {
        "p50": percentile(ordered, 0.50),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        if self.higher_is_better:
            return self.value / self.baseline if self.baseline else float("inf")
        return self.baseline / self.value if self.value else float("inf")


def per_second(work: Callable[[], int], *, min_seconds: float = 1.0) -> float:
    """Items per second: runs `work` (which returns how many items it did) until `min_seconds` have passed."""
    done, started = 0, time.perf_counter()
    while True:
        done += work()
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed


def print_table(rows: list[Row]) -> None:
    headers = ("benchmark", "figure", "baseline (same run)", "baseline figure", "ratio")
    cells = [
        (r.name, f"{r.value:,.1f} {r.unit}", r.baseline_name, f"{r.baseline:,.1f} {r.unit}", f"{r.ratio:,.1f}x")
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    print("ratio: how many times better than the baseline (higher is better).")
