"""Timing and the printed table shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
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
