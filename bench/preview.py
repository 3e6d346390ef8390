"""Subscription previews over a month of notices: keyword queries narrowed in SQL by the notices' search tokens,
against the same previews reading and matching every notice of the window.

Workload: the real notices of the matcher benchmark (`bench._matcher_workload.load_notices`: every fixture format,
84 notices), stored with the API's own read-model insert (`Api.store_notice`), then copied in SQL under new ids
until the read model holds `NOTICES` notices, their publication dates spread evenly over the last 30 days. The
previews are mostly keyword-only filters: common and rare words, a phrase, an OR, a title-only query, a word no
notice has; then a kind alone, and a word with a value range (`QUERIES`).

Baseline, same run, same notices: the same previews once `search_tokens` and `matching_columns` are NULL on every
row, as for notices stored before those columns: every notice of the window is fetched, parsed and matched.
Both must count the same matches, or the run fails. Results in `bench/results/preview.json`;
`python -m bench.preview` runs this benchmark alone.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench._matcher_workload import load_notices
from bench._stack import stack_environment
from bench._table import Row, run_facts
from schemas import SubscriptionFilters
from services.api.app import Api
from services.runtime.settings import Settings

RESULTS = Path(__file__).parent / "results" / "preview.json"
NOTICES = 20_000
DAYS = 30
# label -> the filters previewed
QUERIES: dict[str, dict[str, Any]] = {
    "common word": {"keywords": "services"},
    "rare word": {"keywords": "remorquage"},
    "phrase": {"keywords": '"maîtrise d\'œuvre"'},
    "three words ORed": {"keywords": "voirie OR chaussée OR enrobés"},
    "title only": {"keywords": {"query": "travaux", "title_only": True}},
    "word no notice has": {"keywords": "téléphérique"},
    "a kind, no keywords": {"kinds": ["competition"]},
    "a word and a value range": {"keywords": "services", "value_max": 1_000_000},
}
_NARROWED_RUNS, _BASELINE_RUNS = 5, 2


def _progress(message: str) -> None:
    print(f"  [preview] {message}", file=sys.stderr, flush=True)


async def _fill(api: Api) -> int:
    """The read model filled with the workload's notices; how many notices it holds."""
    notices = load_notices()
    for notice in notices:
        await api.store_notice(notice)
    pool = api.runtime.pool
    async with pool.acquire() as conn, conn.transaction():
        copies = NOTICES // len(notices)
        # Every stored column as the API wrote it, under a new id: the copies are what `store_notice` would store.
        columns = ", ".join(
            row["column_name"]
            for row in await conn.fetch(
                """SELECT column_name FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'notices' AND is_generated = 'NEVER'
                     AND column_name <> 'notice_id' ORDER BY ordinal_position"""
            )
        )
        await conn.execute(
            f"""INSERT INTO notices (notice_id, {columns})
                SELECT notice_id || ':copy-' || copy, {columns} FROM notices, generate_series(1, $1) AS copy""",
            copies - 1,
        )
        # Spread over the window, most recent first in id order: a month of publications.
        await conn.execute(
            """UPDATE notices SET published_at = now() - interval '1 minute'
                                                 - (($1::float8 * n / total) * interval '1 day')
               FROM (SELECT notice_id AS id, row_number() OVER (ORDER BY notice_id) AS n, count(*) OVER () AS total
                     FROM notices) AS numbered
               WHERE notice_id = numbered.id""",
            DAYS,
        )
        await conn.execute("ANALYZE notices")
        return int(await conn.fetchval("SELECT count(*) FROM notices"))


async def _time_previews(api: Api, filters: SubscriptionFilters, runs: int) -> tuple[float, int]:
    """Median seconds of `runs` previews, and the matches counted."""
    seconds, matches = [], set()
    for _ in range(runs):
        started = time.perf_counter()
        answer = await api.preview(filters, days=DAYS, sample=20)
        seconds.append(time.perf_counter() - started)
        matches.add(answer["matches"])
    if len(matches) != 1:
        raise AssertionError(f"the same preview counted different matches: {sorted(matches)}")
    return statistics.median(seconds), matches.pop()


async def _measure(environment: dict[str, str]) -> dict[str, Any]:
    settings = Settings(
        kafka_bootstrap_servers=environment["KAFKA_BOOTSTRAP_SERVERS"],
        kafka_enable_idempotence=environment["KAFKA_ENABLE_IDEMPOTENCE"] == "true",
        database_url=environment["DATABASE_URL"],
    )
    api = Api(settings)
    async with api.runtime.lifespan():
        pool = api.runtime.pool
        await pool.execute("DELETE FROM notices")
        _progress(f"filling the read model with {NOTICES:,} notices")
        stored = await _fill(api)
        queries: dict[str, Any] = {}
        for label, asked in QUERIES.items():
            filters = SubscriptionFilters.model_validate(asked)
            seconds, matches = await _time_previews(api, filters, _NARROWED_RUNS)
            queries[label] = {"filters": asked, "matches": matches, "seconds": seconds}
            _progress(f"{label}: {matches:,} matches in {seconds * 1000:,.0f} ms")
        _progress("baseline: the same previews on notices stored before the read model kept what the rules read")
        kept = await pool.fetch("SELECT notice_id, search_tokens FROM notices")
        await pool.execute("UPDATE notices SET search_tokens = NULL, matching_columns = NULL")
        try:
            for label, asked in QUERIES.items():
                filters = SubscriptionFilters.model_validate(asked)
                seconds, matches = await _time_previews(api, filters, _BASELINE_RUNS)
                if matches != queries[label]["matches"]:
                    raise AssertionError(f"{label}: {queries[label]['matches']} matches narrowed, {matches} in full")
                queries[label]["baseline_seconds"] = seconds
                _progress(f"{label}, in full: {seconds * 1000:,.0f} ms")
        finally:
            await pool.executemany(
                "UPDATE notices SET search_tokens = $2, matching_columns = true WHERE notice_id = $1",
                [(row["notice_id"], row["search_tokens"]) for row in kept],
            )
            await pool.execute("DELETE FROM notices")
    return {
        **run_facts(),
        "notices": stored,
        "days": DAYS,
        "queries": queries,
    }


def run() -> list[Row]:
    with stack_environment() as environment:
        result = asyncio.run(_measure(environment))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return [
        Row(
            f"preview, {label}, {result['notices']:,} notices ({query['matches']:,} matches)",
            query["seconds"] * 1000,
            "ms",
            "same preview, every notice matched",
            query["baseline_seconds"] * 1000,
            higher_is_better=False,
        )
        for label, query in result["queries"].items()
    ]


if __name__ == "__main__":
    from bench._table import print_table

    print_table(run())
