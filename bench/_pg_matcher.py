"""The PostgreSQL baseline of the matcher benchmark: subscriptions in one table, one query per notice.

Each set criterion (kind, CPV prefix, sector, department, region, country, buyer category, procedure type,
buyer) is an array column with a GIN index. A subscription that does not restrict a criterion holds the sentinel
`*` there, and every notice adds `*` to its own keys, so each criterion is one indexable overlap (`cpv && $2`)
and the query is their conjunction; it decides those criteria exactly, as the flags (SME, reserved) are decided
by plain columns. Keywords are array columns of `schemas.filtering.text` tokens: `kw_all`, the tokens every
required term needs (`kw_all <@ notice words`); `kw_any`, one necessary token per alternative of the first OR
group (GIN-indexed overlap); `kw_none`, excluded single words (exact). Value range and deadline are columns
compared in SQL.

What SQL cannot say here (phrases, further OR groups, the exact deadline and value semantics are re-checked)
is verified in Python on the rows returned, with the matcher's own predicate `rules.verified` on filters
compiled once at load, exactly as the index verifies its candidates; that check is part of the time measured.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas import ClassifiedNotice, Subscription
from schemas.filtering.query import AllOf, AnyOf, Not, Query, Term
from schemas.filtering.rules import CompiledFilters, NoticeView, verified

ANY = "*"
# The set criteria, in the order of the query's parameters $1..$9.
_ARRAYS = (
    "kinds",
    "cpv",
    "sectors",
    "departments",
    "regions",
    "countries",
    "buyer_categories",
    "procedure_types",
    "buyers",
    "kw_any",
)
_COLUMNS = (
    "id",
    *_ARRAYS,
    "kw_all",
    "kw_none",
    "title_only",
    "value_min",
    "value_max",
    "has_value_range",
    "needs_value",
    "sme_suitable",
    "reserved",
    "min_days_left",
)

_CREATE = """
CREATE UNLOGGED TABLE {table} (
    id text PRIMARY KEY,
    {arrays},
    kw_all text[] NOT NULL,
    kw_none text[] NOT NULL,
    title_only boolean NOT NULL,
    value_min numeric,
    value_max numeric,
    has_value_range boolean NOT NULL,
    needs_value boolean NOT NULL,
    sme_suitable text,
    reserved text,
    min_days_left integer
)
"""

# $1..$10: the notice's keys for each of _ARRAYS, sentinel included; $11: its words (title and description);
# $12: its title words; $13: value in EUR; $14, $15: SME and reserved flags; $16: seconds left before the deadline.
_MATCH = """
SELECT id FROM {table}
WHERE {overlaps}
  AND kw_all <@ $11::text[]
  AND NOT (kw_none && CASE WHEN title_only THEN $12::text[] ELSE $11::text[] END)
  AND (NOT has_value_range
       OR ($13::numeric IS NULL AND NOT needs_value)
       OR ($13::numeric >= coalesce(value_min, 0) AND $13::numeric <= coalesce(value_max, 'Infinity')))
  AND (sme_suitable IS NULL OR sme_suitable = $14::text)
  AND (reserved IS NULL OR reserved = $15::text)
  AND (min_days_left IS NULL OR $16::float8 IS NULL OR min_days_left * 86400 <= $16::float8 + 1)
"""


def keyword_columns(query: Query) -> tuple[list[str], list[str], list[str]]:
    """(kw_all, kw_any, kw_none) of a parsed query: tokens all required, one of which is, none of which may be."""
    parts = query.children if isinstance(query, AllOf) else (query,)
    required: set[str] = set()
    alternatives = [ANY]
    excluded: set[str] = set()
    for part in parts:
        if isinstance(part, Term):
            required.update(part.tokens)
        elif isinstance(part, AnyOf) and alternatives == [ANY]:
            firsts = [_necessary_token(child) for child in part.children]
            if all(firsts):
                alternatives = sorted({token for token in firsts if token})
        elif isinstance(part, Not) and isinstance(part.child, Term) and len(part.child.tokens) == 1:
            excluded.update(part.child.tokens)
    return sorted(required), alternatives, sorted(excluded)


def _necessary_token(query: Query) -> str | None:
    if isinstance(query, Term):
        return query.tokens[0] if query.tokens else None
    if isinstance(query, AllOf):
        return next((token for child in query.children if (token := _necessary_token(child))), None)
    return None


def _record(subscription_id: str, f: CompiledFilters) -> tuple[Any, ...]:
    kw_all, kw_any, kw_none = keyword_columns(f.query) if f.query is not None else ([], [ANY], [])
    has_range = f.value_min is not None or f.value_max is not None
    return (
        subscription_id,
        list(f.kinds) or [ANY],
        sorted({prefix for _code, prefix in f.cpv}) or [ANY],
        list(f.sectors) or [ANY],
        list(f.departments) or [ANY],
        list(f.regions) or [ANY],
        list(f.countries) or [ANY],
        list(f.buyer_categories) or [ANY],
        list(f.procedure_types) or [ANY],
        sorted({key for _value, key in f.buyers}) or [ANY],
        kw_any,
        kw_all,
        kw_none,
        f.title_only,
        f.value_min,
        f.value_max,
        has_range,
        has_range and f.without_value == "exclude",
        f.sme_suitable,
        f.reserved,
        f.min_days_left,
    )


@dataclass(frozen=True)
class LoadReport:
    rows: int
    seconds: float
    bytes_on_disk: int


class PostgresMatcher:
    """One table of subscriptions; `match` runs one query per notice, then the exact check in Python."""

    def __init__(self, connection: asyncpg.Connection, table: str, filters: dict[str, CompiledFilters]) -> None:
        self._connection = connection
        self._table = table
        self._filters = filters
        self._statement: Any = None
        self.last_rows = 0

    @classmethod
    async def load(
        cls, connection: asyncpg.Connection, table: str, subscriptions: Iterable[Subscription]
    ) -> tuple[PostgresMatcher, LoadReport]:
        """Compile the filters, COPY them in, then build the GIN indexes and statistics; timed together."""
        await connection.execute(f"DROP TABLE IF EXISTS {table}")
        started = time.perf_counter()
        arrays = ",\n    ".join(f"{name} text[] NOT NULL" for name in _ARRAYS)
        await connection.execute(_CREATE.format(table=table, arrays=arrays))
        filters: dict[str, CompiledFilters] = {}
        await connection.copy_records_to_table(table, records=_records(subscriptions, filters), columns=_COLUMNS)
        await connection.execute("SET maintenance_work_mem = '512MB'")
        for name in _ARRAYS:
            await connection.execute(f"CREATE INDEX ON {table} USING gin ({name})")
        await connection.execute(f"ANALYZE {table}")
        seconds = time.perf_counter() - started
        size = await connection.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
        return cls(connection, table, filters), LoadReport(len(filters), seconds, int(size))

    async def prepare(self) -> None:
        # Bitmaps big enough to stay exact; no JIT compilation for a query that runs in milliseconds; a plan made
        # for each notice's values (a generic plan cannot tell a rare CPV prefix from a common one).
        await self._connection.execute("SET work_mem = '64MB'")
        await self._connection.execute("SET jit = off")
        await self._connection.execute("SET plan_cache_mode = force_custom_plan")
        overlaps = "\n  AND ".join(f"{name} && ${n}::text[]" for n, name in enumerate(_ARRAYS, start=1))
        self._statement = await self._connection.prepare(_MATCH.format(table=self._table, overlaps=overlaps))

    async def match(self, notice: ClassifiedNotice, *, now: datetime) -> list[str]:
        """The ids of the subscriptions `notice` matches at `now`, sorted."""
        view = NoticeView.of(notice)
        rows = await self._statement.fetch(*_parameters(view, now))
        self.last_rows = len(rows)
        filters = self._filters
        matched = []
        for (subscription_id,) in rows:
            compiled = filters[subscription_id]
            if verified(compiled, view, now):
                matched.append(subscription_id)
        matched.sort()
        return matched

    async def drop(self) -> None:
        await self._connection.execute(f"DROP TABLE IF EXISTS {self._table}")


def _records(subscriptions: Iterable[Subscription], filters: dict[str, CompiledFilters]) -> Iterator[tuple[Any, ...]]:
    for subscription in subscriptions:
        compiled = CompiledFilters.of(subscription.filters)
        filters[subscription.subscription_id] = compiled
        yield _record(subscription.subscription_id, compiled)


def _with_any(values: Iterable[str]) -> list[str]:
    return [ANY, *values]


def _parameters(view: NoticeView, now: datetime) -> list[Any]:
    return [
        _with_any((view.kind,)),
        _with_any(view.cpv_prefixes),
        _with_any(view.sectors),
        _with_any(view.departments),
        _with_any(view.regions),
        _with_any(view.countries),
        _with_any((view.buyer_category,) if view.buyer_category else ()),
        _with_any((view.procedure,) if view.procedure else ()),
        _with_any(view.buyer_keys),
        _with_any(view.words),
        list(view.words),
        list(view.title.words),
        view.value_eur,
        view.sme_suitable,
        view.reserved,
        (view.deadline - now).total_seconds() if view.deadline else None,
    ]
