"""The matcher's index at 10k, 100k and 1M subscriptions, against a brute-force scan and a PostgreSQL matcher.

Workload: `bench/_matcher_workload.py` (its docstring documents every distribution). For each size, in a fresh
process so that resident memory is measured cleanly:

1. the index is built from the subscription stream as the service builds it (one change at a time, nothing else
   kept): build time, and resident memory (RSS) before and after;
2. the same subscriptions are generated again as a list, for the baselines (the RSS they add is reported too:
   the pydantic objects alone);
3. the decision alone (below) on a first pass over the notices, while the index builds the passing sets it keeps
   per notice values (the resident memory they add is reported), then again on later passes: the baseline of the
   next steps. Then, as the matcher service does once it has caught up, the index is laid out anew
   (`SubscriptionIndex.compact`: every set copied, its parts side by side) and the decision timed again: the
   baseline of the last step; then its memory is moved onto huge pages (`services/runtime/huge_pages.py`). Both
   happen here after the first pass, so the kept passing sets are copied and moved too, where the service's are
   made afterwards on ordinary pages: they are read in sequence, where layout and pages matter least. The time and
   the resident memory each step adds are reported. Then every notice is matched `passes` times after
   a warm-up pass: p50, p99 and max per notice, and how many subscriptions each notice matches; then the decision
   alone (`matching_positions`: which subscriptions match, as ids, before one `Hit` object per match is built),
   which is what the 1 ms target is read against, the hits-built figure shown beside it, and the share of the
   notice's preparation in it (`NoticeView.of`, the same at every size). The notices carry the tokens of their
   title and description, as the classifier ships them (`ClassifiedNotice.search_tokens`); the decision is timed
   again on the same notices without them, the matcher then tokenising the text itself as it did before, and
   tokenising alone is timed too: the classifier's cost, once per notice;
4. brute force (`brute_force_match`), one pass over a spread sample of the notices, as many as fit in about 10 s
   and at least 2 (it takes about a minute per notice at 1M; the row says how many), compared with the index on
   the same notices; the index must return the same hits with the same reasons, or the run fails;
5. PostgreSQL (`bench/_pg_matcher.py`): COPY, GIN indexes, ANALYZE (timed as its build), then one query per
   notice plus the exact check in Python, after a warm-up; it must return the same subscriptions as the index
   on every notice, or the run fails.

PostgreSQL is the one of DATABASE_URL when set, else the embedded server. Results go to
`bench/results/matcher.json`; `python -m bench.matching --sizes 10000,100000` runs fewer sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench._matcher_workload import Workload, matched_at
from bench._pg_matcher import PostgresMatcher
from bench._stack import stack_environment
from bench._table import Row, distribution, percentile, print_table, run_facts
from schemas import ClassifiedNotice, Subscription
from schemas.filtering.rules import NoticeView, search_tokens_of
from services.matcher.index import Hit, SubscriptionIndex, brute_force_match
from services.runtime.huge_pages import collapse_heap

RESULTS = Path(__file__).parent / "results" / "matcher.json"
SIZES = (10_000, 100_000, 1_000_000)
_MIN_PROGRESS_STEP = 10_000  # subscriptions between two progress lines, at least
_MIN_INDEX_PASSES, _MIN_INDEX_SECONDS = 10, 2.0
_MAX_PG_PASSES, _PG_SECONDS = 3, 60.0
_BRUTE_FORCE_SECONDS, _MIN_BRUTE_FORCE_NOTICES = 10.0, 2  # brute force stops after the notice that passes 10 s
_WARM_UP_NOTICES = 3
_MIB = 2**20
_TARGET_P99_US = 1_000.0
_TARGET_PG_RATIO = 100.0
_TARGET_RSS_MIB = 1.5e9 / _MIB  # 1.5 GB


def _progress(message: str) -> None:
    print(f"  [matcher] {message}", file=sys.stderr, flush=True)


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _build_index(workload: Workload, size: int) -> tuple[SubscriptionIndex, float, int]:
    """The index built one subscription at a time from the stream, as the service gets them, nothing else kept;
    (index, seconds spent in `upsert`, RSS delta in bytes)."""
    before = _rss()
    index, building = SubscriptionIndex(), 0
    report_every = max(_MIN_PROGRESS_STEP, size // 5)
    for done, subscription in enumerate(workload.subscriptions(size), start=1):
        started = time.perf_counter_ns()
        index.upsert(subscription)
        building += time.perf_counter_ns() - started
        if done % report_every == 0:
            _progress(f"{size:,}: indexed {done:,} subscriptions ({building / 1e9:.1f} s in upsert)")
    return index, building / 1e9, _rss() - before


class _CollectorPauses:
    """The garbage collector's pauses while active, per generation: how many, the longest, the total (ms)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __enter__(self) -> _CollectorPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._started) * 1_000)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            f"generation {generation}": {"count": len(ms), "max_ms": max(ms, default=0.0), "total_ms": sum(ms)}
            for generation, ms in self.pauses.items()
        }


def _time_matches(
    index: SubscriptionIndex, notices: list[ClassifiedNotice]
) -> tuple[list[float], int, dict[str, dict[str, float]]]:
    """Per-call match times in µs over several passes after a warm-up one; the passes made; collector pauses."""
    for notice in notices:
        index.match(notice, now=matched_at(notice))
    samples: list[float] = []
    passes, started = 0, time.perf_counter()
    with _CollectorPauses() as pauses:
        while passes < _MIN_INDEX_PASSES or time.perf_counter() - started < _MIN_INDEX_SECONDS:
            for notice in notices:
                now = matched_at(notice)
                begin = time.perf_counter_ns()
                index.match(notice, now=now)
                samples.append((time.perf_counter_ns() - begin) / 1_000)
            passes += 1
    return samples, passes, pauses.summary()


def _time_decisions(
    index: SubscriptionIndex, notices: list[ClassifiedNotice], passes: int = _MIN_INDEX_PASSES
) -> tuple[list[float], list[float]]:
    """Per-notice times in µs of the decision alone (`matching_positions`, notice preparation included): what
    matching costs before one Python object per hit is built; and of the preparation within it (`NoticeView.of`,
    the same work whatever the number of subscriptions). Right after the build, one pass is the first pass: a
    notice whose departments, sectors, kind... no earlier notice had builds its groups' passing sets (`_GROUPS` in
    services/matcher/index.py), as in a matcher's first minutes; later passes reuse them."""
    samples: list[float] = []
    preparations: list[float] = []
    for _ in range(passes):
        for notice in notices:
            now = matched_at(notice)
            begin = time.perf_counter_ns()
            view = NoticeView.of(notice)
            prepared = time.perf_counter_ns()
            index.matching_positions(view, now=now)
            samples.append((time.perf_counter_ns() - begin) / 1_000)
            preparations.append((prepared - begin) / 1_000)
    return samples, preparations


def _time_tokenising(notices: list[ClassifiedNotice], passes: int = _MIN_INDEX_PASSES) -> list[float]:
    """Per-notice times in µs of tokenising its title and description (`search_tokens_of`): what the classifier
    does once per notice, so that the matcher's decision does not."""
    samples: list[float] = []
    for _ in range(passes):
        for notice in notices:
            begin = time.perf_counter_ns()
            search_tokens_of(notice)
            samples.append((time.perf_counter_ns() - begin) / 1_000)
    return samples


def _hits_key(hits: list[Hit]) -> list[tuple[str, list[str]]]:
    return [(hit.subscription_id, [reason.model_dump_json() for reason in hit.reasons]) for hit in hits]


def _spread(count: int) -> list[int]:
    """0..count-1 in an order whose every prefix is spread over the whole range (golden-ratio stride)."""
    step = max(1, round(count * 0.618))
    while math.gcd(step, count) != 1:
        step += 1
    return [i * step % count for i in range(count)]


def _brute_force(
    index: SubscriptionIndex, subscriptions: list[Subscription], notices: list[ClassifiedNotice], size: int
) -> dict[str, Any]:
    """Brute force on a spread sample of notices, as many as fit in the time budget (at least 2), and the index on
    the same ones; fails on any difference in hits or reasons."""
    samples: list[float] = []
    sample: list[ClassifiedNotice] = []
    started = time.perf_counter()
    for position in _spread(len(notices)):
        if len(sample) >= _MIN_BRUTE_FORCE_NOTICES and time.perf_counter() - started > _BRUTE_FORCE_SECONDS:
            break
        notice = notices[position]
        now = matched_at(notice)
        begin = time.perf_counter_ns()
        expected = brute_force_match(subscriptions, notice, now=now)
        samples.append((time.perf_counter_ns() - begin) / 1_000)
        sample.append(notice)
        got = sorted(index.match(notice, now=now), key=lambda hit: hit.subscription_id)  # brute force's order
        if _hits_key(expected) != _hits_key(got):
            wanted, found = {h.subscription_id for h in expected}, {h.subscription_id for h in got}
            raise AssertionError(
                f"the index disagrees with brute force on {notice.notice_id} at {size:,} subscriptions: "
                f"missing {sorted(wanted - found)[:10]}, extra {sorted(found - wanted)[:10]} (else: the reasons differ)"
            )
    seconds = time.perf_counter() - started
    _progress(f"{size:,}: brute force agrees with the index on {len(sample)} notices ({seconds:.0f} s)")
    index_samples, _passes, _pauses = _time_matches(index, sample)
    return {"notices": len(sample), "us": distribution(samples), "index_us_same_notices": distribution(index_samples)}


async def _postgres(
    database_url: str, subscriptions: list[Subscription], notices: list[ClassifiedNotice],
    index_ids: list[list[str]], size: int,
) -> dict[str, Any]:  # fmt: skip
    connection = await asyncpg.connect(database_url)
    try:
        _progress(f"{size:,}: PostgreSQL load (COPY, GIN indexes, ANALYZE)")
        matcher, load = await PostgresMatcher.load(connection, f"bench_matcher_{size}", subscriptions)
        await matcher.prepare()
        _progress(f"{size:,}: PostgreSQL loaded in {load.seconds:.1f} s; querying")
        for notice in notices[:_WARM_UP_NOTICES]:
            await matcher.match(notice, now=matched_at(notice))
        samples: list[float] = []
        rows: list[int] = []
        passes, started, pass_seconds = 0, time.perf_counter(), 0.0
        # Another pass only while it fits in the time budget: one pass of every notice is slow at 1M.
        while passes < _MAX_PG_PASSES and (passes == 0 or time.perf_counter() - started + pass_seconds < _PG_SECONDS):
            pass_started = time.perf_counter()
            for position, notice in enumerate(notices):
                now = matched_at(notice)
                begin = time.perf_counter_ns()
                ids = await matcher.match(notice, now=now)
                samples.append((time.perf_counter_ns() - begin) / 1_000)
                if passes == 0:
                    rows.append(matcher.last_rows)
                    expected = index_ids[position]
                    if ids != expected:
                        raise AssertionError(
                            f"PostgreSQL and the index disagree on {notice.notice_id} at {size:,} subscriptions: "
                            f"only PostgreSQL {sorted(set(ids) - set(expected))[:10]}, "
                            f"only the index {sorted(set(expected) - set(ids))[:10]}"
                        )
            passes += 1
            pass_seconds = time.perf_counter() - pass_started
        await matcher.drop()
        return {
            "load_seconds": load.seconds,
            "bytes_on_disk": load.bytes_on_disk,
            "passes": passes,
            "us": distribution(samples),
            "sql_rows_per_notice_mean": sum(rows) / len(rows),
        }
    finally:
        await connection.close()


def _criterion_shares(subscriptions: list[Subscription]) -> dict[str, float]:
    """The share of subscriptions setting each criterion, as generated."""
    counts: dict[str, int] = {}
    for subscription in subscriptions:
        fields = subscription.filters.model_fields_set
        for name in fields:
            counts[name] = counts.get(name, 0) + 1
        if not fields & {"departments", "regions", "countries"}:
            counts["(no geography)"] = counts.get("(no geography)", 0) + 1
        if not fields:
            counts["(no criterion)"] = counts.get("(no criterion)", 0) + 1
    return {name: round(count / len(subscriptions), 4) for name, count in sorted(counts.items())}


def measure(workload: Workload, size: int, database_url: str) -> dict[str, Any]:
    """Everything measured at one size; meant for a fresh process (see module docstring)."""
    notices = workload.notices
    warm = SubscriptionIndex()  # imports and caches loaded before the first RSS reading
    warm.upsert(next(workload.subscriptions(1)))
    warm.match(notices[0], now=matched_at(notices[0]))
    del warm

    _progress(f"{size:,}: building the index from the subscription stream")
    started = time.perf_counter()
    index, build_seconds, index_bytes = _build_index(workload, size)
    stream_seconds = time.perf_counter() - started
    _progress(f"{size:,}: index built, {build_seconds:.1f} s in upsert, RSS +{index_bytes / _MIB:,.0f} MiB")
    # As the matcher service does once its index has caught up: no full collection walks the index mid-notice.
    gc.collect()
    gc.freeze()
    before_matching = _rss()

    first_decisions, _first_preparations = _time_decisions(index, notices, passes=1)
    # Then the matcher lays its index out anew and moves its memory onto huge pages (MATCHER_HUGE_PAGES); timed
    # before each step, the decision is this run's baseline for it.
    as_built_decisions, _preparations = _time_decisions(index, notices)
    before_compaction, started = _rss(), time.perf_counter()
    index.compact()
    compaction_seconds = time.perf_counter() - started
    gc.freeze()
    compaction_bytes = _rss() - before_compaction
    _progress(f"{size:,}: index laid out anew in {compaction_seconds:.2f} s, RSS {compaction_bytes / _MIB:+,.1f} MiB")
    ordinary_page_decisions, _preparations = _time_decisions(index, notices)
    before_collapse = _rss()
    collapse = collapse_heap()
    collapse_bytes = _rss() - before_collapse
    _progress(
        f"{size:,}: left on ordinary pages ({collapse.unsupported})"
        if collapse.unsupported
        else f"{size:,}: {collapse.collapsed_bytes / _MIB:,.0f} MiB moved onto huge pages in {collapse.seconds:.1f} s"
    )
    samples, passes, collector_pauses = _time_matches(index, notices)
    decisions, preparations = _time_decisions(index, notices)
    # The same notices without the classifier's tokens, as an older classifier sends them: the matcher tokenises.
    untokenised = [notice.model_copy(update={"search_tokens": None}) for notice in notices]
    decisions_tokenising, _preparations = _time_decisions(index, untokenised)
    tokenising = _time_tokenising(notices)
    kept_bytes = _rss() - before_matching - compaction_bytes - collapse_bytes
    # By position: a notice id comes back with each version of the notice.
    index_ids = [sorted(hit.subscription_id for hit in index.match(n, now=matched_at(n))) for n in notices]
    matches = sorted(len(ids) for ids in index_ids)
    _progress(f"{size:,}: {len(notices)} notices matched x {passes} passes; generating the list for the baselines")

    before, started = _rss(), time.perf_counter()
    # The list is the harness's, not the matcher's: garbage collection is kept out of its making, and its objects
    # out of every later collection, so that neither slows the baselines.
    gc.disable()
    subscriptions = list(workload.subscriptions(size))
    gc.enable()
    objects_bytes = _rss() - before
    gc.freeze()
    _progress(f"{size:,}: list generated in {time.perf_counter() - started:.0f} s; brute force")
    brute = _brute_force(index, subscriptions, notices, size)
    postgres = asyncio.run(_postgres(database_url, subscriptions, notices, index_ids, size))
    return {
        "subscriptions": size,
        "criteria": _criterion_shares(subscriptions),
        "index": {
            "build_seconds": build_seconds,
            "generation_and_build_seconds": stream_seconds,
            "rss_bytes": index_bytes,
            "passes": passes,
            "us": distribution(samples),
            "garbage_collector_pauses_while_matching": collector_pauses,
            "decision_us": distribution(decisions),
            "decision_first_pass_us": distribution(first_decisions),
            "decision_as_built_us": distribution(as_built_decisions),
            "compaction": {"seconds": compaction_seconds, "rss_added_bytes": compaction_bytes},
            "decision_ordinary_pages_us": distribution(ordinary_page_decisions),
            "huge_pages": {
                "collapsed_bytes": collapse.collapsed_bytes,
                "seconds": collapse.seconds,
                "refused_ranges": collapse.refused_ranges,
                "unsupported": collapse.unsupported,
                "rss_added_bytes": collapse_bytes,
            },
            "notice_preparation_us": distribution(preparations),
            "decision_tokenising_here_us": distribution(decisions_tokenising),
            "classifier_tokenising_us": distribution(tokenising),
            "rss_added_while_matching_bytes": kept_bytes,
            "verified_subscriptions_share": index.verified_share,
        },
        "pydantic_objects_rss_bytes": objects_bytes,
        "matches_per_notice": {
            "mean": sum(matches) / len(matches),
            "median": percentile(matches, 0.5),
            "max": matches[-1],
            "notices_without_match": sum(1 for m in matches if m == 0),
        },
        "brute_force": brute,
        "postgres": postgres,
    }


def _measure_in_fresh_process(workload: Workload, size: int, database_url: str) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, workload, size, database_url).result()


def _rows(result: dict[str, Any]) -> list[Row]:
    size, index, pg, brute = result["subscriptions"], result["index"], result["postgres"], result["brute_force"]
    at = f"{size:,} subs"
    pg_name = "PostgreSQL, GIN, 1 query/notice"
    rows = [
        Row(f"match p50, {at}", index["us"]["p50"], "µs", pg_name, pg["us"]["p50"], False),
        Row(f"match p99, {at}", index["us"]["p99"], "µs", pg_name, pg["us"]["p99"], False),
        Row(f"match max, {at}", index["us"]["max"], "µs", pg_name, pg["us"]["max"], False),
        Row(f"decision p50 (ids, no hit objects), {at}", index["decision_us"]["p50"], "µs", pg_name, pg["us"]["p50"],
            False),
        Row(f"decision p99 (ids, no hit objects), {at}", index["decision_us"]["p99"], "µs", pg_name, pg["us"]["p99"],
            False),
        Row(f"decision p50 as built (before compaction and huge pages), {at}",
            index["decision_as_built_us"]["p50"], "µs", pg_name, pg["us"]["p50"], False),
        Row(f"decision p99 as built (before compaction and huge pages), {at}",
            index["decision_as_built_us"]["p99"], "µs", pg_name, pg["us"]["p99"], False),
        Row(f"decision p50 compacted, on ordinary pages (before huge pages), {at}",
            index["decision_ordinary_pages_us"]["p50"], "µs", pg_name, pg["us"]["p50"], False),
        Row(f"decision p99 compacted, on ordinary pages (before huge pages), {at}",
            index["decision_ordinary_pages_us"]["p99"], "µs", pg_name, pg["us"]["p99"], False),
        Row(f"of which notice preparation p50 (classifier's tokens), {at}", index["notice_preparation_us"]["p50"],
            "µs", "(no baseline)", index["notice_preparation_us"]["p50"], False),
        Row(f"of which notice preparation p99 (classifier's tokens), {at}", index["notice_preparation_us"]["p99"],
            "µs", "(no baseline)", index["notice_preparation_us"]["p99"], False),
        Row(f"decision p50, notice without tokens (tokenised here), {at}", index["decision_tokenising_here_us"]["p50"],
            "µs", pg_name, pg["us"]["p50"], False),
        Row(f"decision p99, notice without tokens (tokenised here), {at}", index["decision_tokenising_here_us"]["p99"],
            "µs", pg_name, pg["us"]["p99"], False),
        Row(f"text tokenised by the classifier p50 (once per notice), {at}", index["classifier_tokenising_us"]["p50"],
            "µs", "(no baseline)", index["classifier_tokenising_us"]["p50"], False),
        Row(f"text tokenised by the classifier p99 (once per notice), {at}", index["classifier_tokenising_us"]["p99"],
            "µs", "(no baseline)", index["classifier_tokenising_us"]["p99"], False),
        Row(f"decision p50, first pass (passing sets being kept), {at}", index["decision_first_pass_us"]["p50"], "µs",
            pg_name, pg["us"]["p50"], False),
        Row(f"decision p99, first pass (passing sets being kept), {at}", index["decision_first_pass_us"]["p99"], "µs",
            pg_name, pg["us"]["p99"], False),
        Row(
            f"match mean, {at}, {brute['notices']} notices", brute["index_us_same_notices"]["mean"], "µs",
            f"brute-force scan, same {brute['notices']} notices", brute["us"]["mean"], False,
        ),
        Row(f"index build, {at}", index["build_seconds"], "s", "PostgreSQL COPY + GIN + ANALYZE",
            pg["load_seconds"], False),
        Row(f"resident memory of the index, {at}", index["rss_bytes"] / _MIB, "MiB",
            "PostgreSQL table + indexes, disk", pg["bytes_on_disk"] / _MIB, False),
    ]  # fmt: skip
    full_collections = index["garbage_collector_pauses_while_matching"]["generation 2"]
    if full_collections["count"]:  # a pause that explains a max far above the p99
        label = f"longest of {full_collections['count']} full GC pauses while matching, {at}"
        rows.append(Row(label, full_collections["max_ms"], "ms", "(no baseline)", full_collections["max_ms"]))
    kept_mib = index["rss_added_while_matching_bytes"] / _MIB
    rows.append(Row(f"memory added while matching (kept passing sets), {at}", kept_mib, "MiB", "(no baseline)",
                    kept_mib))  # fmt: skip
    compaction = index["compaction"]
    compaction_mib = compaction["rss_added_bytes"] / _MIB
    rows.append(Row(f"memory added by the compaction, {at}", compaction_mib, "MiB", "(no baseline)", compaction_mib))
    compaction_ms = compaction["seconds"] * 1_000
    rows.append(Row(f"time to compact the index, {at}", compaction_ms, "ms", "(no baseline)", compaction_ms))
    huge = index["huge_pages"]
    if huge["unsupported"] is None:
        huge_mib = huge["rss_added_bytes"] / _MIB
        rows.append(Row(f"memory added by the move onto huge pages, {at}", huge_mib, "MiB", "(no baseline)", huge_mib))
        rows.append(Row(f"time to move {huge['collapsed_bytes'] / _MIB:,.0f} MiB onto huge pages, {at}",
                        huge["seconds"], "s", "(no baseline)", huge["seconds"]))  # fmt: skip
    objects_mib = result["pydantic_objects_rss_bytes"] / _MIB
    rows.append(Row(f"for scale: the Subscription objects, {at}", objects_mib, "MiB", "(no baseline)", objects_mib))
    per_notice = result["matches_per_notice"]["mean"]
    rows.append(Row(f"matches per notice (mean), {at}", per_notice, "", "(no baseline)", per_notice, False))
    return rows


def _target_rows(result: dict[str, Any]) -> list[Row]:
    size, index, pg = result["subscriptions"], result["index"], result["postgres"]
    at = f"{size:,} subs"

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    # The index and what it keeps while matching (passing sets per notice values).
    added = (
        index["rss_added_while_matching_bytes"]
        + index["compaction"]["rss_added_bytes"]
        + index["huge_pages"]["rss_added_bytes"]
    )
    p99, rss_mib = index["us"]["p99"], (index["rss_bytes"] + added) / _MIB
    decision_p99 = index["decision_us"]["p99"]
    ratio_p50, ratio_p99 = pg["us"]["p50"] / index["us"]["p50"], pg["us"]["p99"] / index["us"]["p99"]
    decision_ratio_p99 = pg["us"]["p99"] / decision_p99
    return [
        Row(f"target p99 <= 1 ms, decision (ids), {at}: {verdict(decision_p99 <= _TARGET_P99_US)}", decision_p99,
            "µs", "target", _TARGET_P99_US, False),
        Row(f"target p99 <= 1 ms, hit objects built, {at}: {verdict(p99 <= _TARGET_P99_US)}", p99, "µs", "target",
            _TARGET_P99_US, False),
        Row(f"target >= 100x PostgreSQL at p50, {at}: {verdict(ratio_p50 >= _TARGET_PG_RATIO)}", ratio_p50, "x",
            "target", _TARGET_PG_RATIO),
        Row(f"target >= 100x PostgreSQL at p99, hits built, {at}: {verdict(ratio_p99 >= _TARGET_PG_RATIO)}",
            ratio_p99, "x", "target", _TARGET_PG_RATIO),
        Row(f"target >= 100x PostgreSQL at p99, decision, {at}: {verdict(decision_ratio_p99 >= _TARGET_PG_RATIO)}",
            decision_ratio_p99, "x", "target", _TARGET_PG_RATIO),
        Row(f"target RSS <= 1.5 GB, {at}: {verdict(rss_mib <= _TARGET_RSS_MIB)}", rss_mib, "MiB", "target",
            _TARGET_RSS_MIB, False),
    ]  # fmt: skip


def run(sizes: tuple[int, ...] = SIZES) -> list[Row]:
    _progress("loading and classifying the fixture notices")
    workload = Workload.load()
    results = []
    with stack_environment(kafka=False) as environment:
        database_url = environment["DATABASE_URL"]
        for size in sizes:
            started = time.perf_counter()
            results.append(_measure_in_fresh_process(workload, size, database_url))
            _progress(f"{size:,}: done in {time.perf_counter() - started:.0f} s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(_report(workload, results), indent=2) + "\n", encoding="utf-8")
    rows = [row for result in results for row in _rows(result)]
    return rows + _target_rows(results[-1])


def _report(workload: Workload, results: list[dict[str, Any]]) -> dict[str, Any]:
    notices = workload.notices
    languages: dict[str, int] = {}
    for notice in notices:
        languages[notice.language] = languages.get(notice.language, 0) + 1
    return {
        **run_facts(),
        "units": "times in µs per notice, memory in bytes",
        "workload": {
            "seed": workload.seed,
            "notices": len(notices),
            "notice_languages": dict(sorted(languages.items(), key=lambda item: -item[1])),
            "keyword_vocabulary": {
                "words": len(workload.pools.words.items),
                "phrases": len(workload.pools.phrases.items),
            },
            "distributions": "see the docstring of bench/_matcher_workload.py",
        },
        "targets": {"p99_us": _TARGET_P99_US, "postgres_ratio": _TARGET_PG_RATIO, "rss_bytes": 1.5e9},
        "sizes": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated subscription counts")
    sizes = tuple(int(size) for size in parser.parse_args().sizes.split(","))
    print_table(run(sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
