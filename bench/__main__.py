"""`python -m bench`: every benchmark, one table."""

from __future__ import annotations

import sys
import time

from bench import (
    capacity,
    eval_classifier,
    fanout,
    matching,
    notifier_email,
    notifier_webhooks,
    parsing,
    preview,
)
from bench._table import print_table


def main() -> int:
    rows = []
    for module in (parsing, eval_classifier, matching, fanout, preview, notifier_email, notifier_webhooks, capacity):
        started = time.perf_counter()
        print(f"running {module.__name__} ...", file=sys.stderr, flush=True)
        rows += module.run()
        print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
