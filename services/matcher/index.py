"""Which subscriptions a classified notice matches, without scanning them all (DESIGN.md §5).

What matches is defined once, in `schemas.filtering.rules`; this module only decides which subscriptions to ask,
and decides it exactly for every filter shape people actually write.

Each subscription gets a dense integer id. A set-membership dimension (kind, CPV prefix, sector, department,
region, country, buyer category, procedure type, buyer, SME and reserved flags, keyword clauses) keeps, per value,
a compressed bitmap (roaring) of the subscriptions asking for it, plus the bitmap of the subscriptions that do not
restrict the dimension. For a notice, a subscription survives a dimension when it does not restrict it or asks for
one of the notice's values:

    candidates = (candidates & unrestricted) | (candidates & (postings[v1] | postings[v2] | ...))

Numeric bounds (value range in euros, minimum days left) are postings keyed by the bound: the subscriptions
failing a notice are those whose bound is on the wrong side of its number, and which bounds fail is said by one
bound, the notice's threshold (`_BoundDimension.threshold`).

Dimensions whose notice values are few and recur are met in groups (`_GROUPS`: geography; sectors; kind, flags,
buyer category, procedure and the bounds): a group's passing set, the AND of its dimensions' for the notice's
values and thresholds, is kept (the `_KEPT_PASSING_SETS` most recently used per group) and reused by the next
notice with the same ones; `upsert` and `remove` update the kept sets in place, so they are never stale. CPV
codes come next and split the work in two: the kept sets are met with the subscriptions without codes on one side,
and with the union of the notice's CPV postings on the other. The other dimensions (keyword clauses, buyer) follow,
most restricting first, then keyword exclusions (`-entretien`), which can only remove.

Costs, measured: an operation on roaring bitmaps visits every chunk of 65,536 ids both its operands span and, below
4,096 ids in a chunk, costs for each id it keeps. So a notice's postings in one dimension are united among
themselves in one call when they are many and small (its words), or each met with the candidates when they are few
and large, but never added one by one to a set nor to the dense unrestricted set (`_Dimension.meet`). And ids are
handed out in chunks by class (`_Positions`: with or without CPV codes; without keywords, with a one-clause query,
or another query), so that the subscriptions without CPV codes meet the dense kept sets over their own chunks only,
and a notice's CPV postings, its dozens of keyword postings, and the few subscriptions per word of second clauses
and exclusions span fewer chunks.

Keywords: a query that can be said as clauses (`query.as_clauses`: a term, terms ORed, or an AND of those and of
exclusions; nearly every real query) is decided by set membership too. Clause i of every such query is a
dimension of its own; its keys are terms: a word, or a phrase's tokens joined by spaces, prefixed with `^` for a
title-only query. A notice's keys are its words and the indexed phrases it contains, found through the phrases'
first tokens, once per notice. Only other queries (an OR of ANDs, more than `_CLAUSES` clauses) are posted under
necessary tokens (`query.required_tokens`) and verified exactly (`rules.verified`) on the survivors. Reasons
are computed only when a hit is read.

Updates are incremental: `upsert` and `remove` touch the bitmaps of one subscription (and the kept passing sets);
ids are reused. Once the index is built, `compact` copies every set, so that each set's parts lie side by side.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pyroaring import BitMap

from schemas.alert import MatchReason
from schemas.filtering.query import Clauses, Term, as_clauses, required_tokens
from schemas.filtering.rules import TITLE_MARK, CompiledFilters, NoticeView, reasons, verified
from schemas.notice import ClassifiedNotice
from schemas.subscription import DeliverySettings, Subscription, WithoutValue


class Hit:
    """A subscription a notice matched; `reasons` says why and is computed on first read."""

    __slots__ = ("_entry", "_now", "_reasons", "_view")

    def __init__(self, entry: _Entry, view: NoticeView, now: datetime) -> None:
        self._entry, self._view, self._now = entry, view, now
        self._reasons: tuple[MatchReason, ...] | None = None

    @property
    def subscription_id(self) -> str:
        return self._entry.subscription_id

    @property
    def subscriber_id(self) -> str:
        return self._entry.subscriber_id

    @property
    def name(self) -> str:
        return self._entry.name

    @property
    def delivery(self) -> DeliverySettings:
        """Where and how the subscriber wants the alert."""
        return DeliverySettings.model_construct(**dict(zip(_DELIVERY_FIELDS, self._entry.delivery, strict=True)))

    @property
    def reasons(self) -> tuple[MatchReason, ...]:
        if self._reasons is None:
            found = reasons(self._entry.filters, self._view, self._now)
            if found is None:  # the index and the rules disagree: a bug, never a silent wrong alert
                raise AssertionError(f"subscription {self.subscription_id} was matched but its filters do not hold")
            self._reasons = found
        return self._reasons

    def __repr__(self) -> str:
        return f"Hit({self.subscription_id!r})"


class _Entry:
    """What the index keeps of a subscription: enough to match it and to address the alert, nothing more."""

    __slots__ = ("delivery", "filters", "name", "subscriber_id", "subscription_id")

    def __init__(self, subscription: Subscription, filters: CompiledFilters, delivery: tuple[Any, ...]) -> None:
        self.subscription_id = subscription.subscription_id
        self.subscriber_id = subscription.subscriber_id
        self.name = subscription.name
        self.delivery = delivery
        self.filters = filters


# Postings of at least this many subscriptions on average are met with the candidates one by one; smaller ones are
# united first (`_Dimension.meet`). Measured at a million subscriptions: a notice's CPV prefixes hold thousands of
# subscriptions each, its words hundreds.
_LARGE_POSTING = 1_500

# Keyword clauses the index decides; a query with more is verified. Real queries have one to three.
_CLAUSES = 4

# Delivery settings are kept as a tuple of their values, shared by the subscriptions that have the same ones: a
# pydantic model per subscription would cost more than the rest of the entry.
_DELIVERY_FIELDS = tuple(DeliverySettings.model_fields)

_MICROSECONDS_A_DAY = 86_400_000_000


def _delivery_values(delivery: DeliverySettings) -> tuple[Any, ...]:
    return tuple(getattr(delivery, name) for name in _DELIVERY_FIELDS)


class _Notice:
    """What the dimensions read of one notice: its view, and its keyword keys once found."""

    __slots__ = ("keyword_keys", "view")

    def __init__(self, view: NoticeView, keyword_keys: frozenset[str]) -> None:
        self.view = view
        self.keyword_keys = keyword_keys


# A dimension: the keys a subscription asks for (empty: not restricted) and the keys a notice has.
_SubscriptionKeys = Callable[[CompiledFilters], Iterable[str]]
_NoticeKeys = Callable[[_Notice], Iterable[str]]


def _flag_keys(flag: str | None) -> tuple[str, ...]:
    return () if flag is None else (flag,)


def term_key(term: Term, *, title_only: bool) -> str:
    """The key a keyword term is posted under: its tokens joined by spaces, marked when it is for the title."""
    key = " ".join(term.tokens)
    return TITLE_MARK + key if title_only else key


def _clauses(filters: CompiledFilters) -> Clauses | None:
    if filters.query is None:
        return None
    clauses = as_clauses(filters.query)
    return clauses if clauses is not None and len(clauses.required) <= _CLAUSES else None


def _clause_keys(position: int) -> _SubscriptionKeys:
    def keys(filters: CompiledFilters) -> Iterable[str]:
        clauses = _clauses(filters)
        if clauses is None or position >= len(clauses.required):
            return ()
        return {term_key(term, title_only=filters.title_only) for term in clauses.required[position]}

    return keys


def _excluded_keys(filters: CompiledFilters) -> Iterable[str]:
    clauses = _clauses(filters)
    if clauses is None:
        return ()
    # A term without tokens is never found, so excluding it excludes nothing.
    return {term_key(term, title_only=filters.title_only) for term in clauses.excluded if term.tokens}


def _verified_keyword_keys(filters: CompiledFilters) -> Iterable[str]:
    """Necessary tokens of the queries the clauses cannot say; verification decides them."""
    if filters.query is None or _clauses(filters) is not None:
        return ()
    return required_tokens(filters.query) or ()  # None: no necessary token, verification decides


def _valued_keys(filters: CompiledFilters) -> tuple[str, ...]:
    """Subscriptions with a value range that a notice without a value fails."""
    ranged = filters.value_min is not None or filters.value_max is not None
    return ("valued",) if ranged and filters.without_value is WithoutValue.EXCLUDE else ()


_DIMENSIONS: dict[str, tuple[_SubscriptionKeys, _NoticeKeys]] = {
    "kind": (lambda f: f.kinds, lambda n: (n.view.kind,)),
    "cpv": (lambda f: {prefix for _code, prefix in f.cpv}, lambda n: n.view.cpv_prefixes),
    "sector": (lambda f: f.sectors, lambda n: n.view.sectors),
    "department": (lambda f: f.departments, lambda n: n.view.departments),
    "region": (lambda f: f.regions, lambda n: n.view.regions),
    "country": (lambda f: f.countries, lambda n: n.view.countries),
    "buyer_category": (lambda f: f.buyer_categories, lambda n: _flag_keys(n.view.buyer_category)),
    "procedure_type": (lambda f: f.procedure_types, lambda n: _flag_keys(n.view.procedure)),
    "buyer": (lambda f: {key for _value, key in f.buyers}, lambda n: n.view.buyer_keys),
    "sme_suitable": (lambda f: _flag_keys(f.sme_suitable), lambda n: _flag_keys(n.view.sme_suitable)),
    "reserved": (lambda f: _flag_keys(f.reserved), lambda n: (n.view.reserved,)),
    "valued": (_valued_keys, lambda n: () if n.view.value_eur is None else ("valued",)),
    "keyword_verified": (_verified_keyword_keys, lambda n: n.keyword_keys),
    **{f"keyword_clause_{i}": (_clause_keys(i), lambda n: n.keyword_keys) for i in range(_CLAUSES)},
}


class _Dimension:
    __slots__ = ("notice_keys", "postings", "restricting", "subscription_keys", "unrestricted")

    def __init__(self, subscription_keys: _SubscriptionKeys, notice_keys: _NoticeKeys) -> None:
        self.subscription_keys = subscription_keys
        self.notice_keys = notice_keys
        self.postings: dict[str, BitMap] = {}
        self.restricting = 0  # how many subscriptions it restricts: only what orders the dimensions
        self.unrestricted = BitMap()  # kept rather than computed: a million bits cost 125 kB, a difference 20 µs

    def add(self, position: int, filters: CompiledFilters) -> None:
        keys = set(self.subscription_keys(filters))
        if keys:
            self.restricting += 1
        else:
            self.unrestricted.add(position)
        for key in keys:
            posting = self.postings.get(key)
            if posting is None:
                self.postings[key] = posting = BitMap()
            posting.add(position)

    def discard(self, position: int, filters: CompiledFilters) -> None:
        keys = set(self.subscription_keys(filters))
        if keys:
            self.restricting -= 1
        else:
            self.unrestricted.discard(position)
        for key in keys:
            posting = self.postings.get(key)
            if posting is not None:
                posting.discard(position)
                if not posting:
                    del self.postings[key]

    def copy_sets(self) -> object:
        """Replace its sets with copies (`SubscriptionIndex.compact`); the originals are returned, to be freed by the
        caller once every copy is made."""
        originals = self.postings, self.unrestricted
        self.postings = _copied(self.postings)
        self.unrestricted = BitMap(self.unrestricted)
        return originals

    def found(self, notice: _Notice) -> list[BitMap]:
        """The postings of the notice's values."""
        postings = self.postings
        keys = self.notice_keys(notice)
        if isinstance(keys, frozenset | set) and len(keys) > len(postings):
            keys = postings.keys() & keys  # a notice's many words against a dimension's few keys
        return [posting for key in keys if (posting := postings.get(key)) is not None]

    def meet(self, candidates: BitMap, found: list[BitMap]) -> BitMap:
        """The candidates this dimension lets through: those it does not restrict and those in `found`, the
        postings of the notice's values. Never a union with the unrestricted set, which copies a dense set, and
        never postings added one by one to a set, which merges sorted arrays again and again (at a million
        subscriptions, a notice's 58 words cost 0.7 ms that way, 0.12 ms this way)."""
        kept = candidates & self.unrestricted
        if not found:
            return kept
        if len(found) == 1:
            return kept | (candidates & found[0])
        if sum(len(posting) for posting in found) >= _LARGE_POSTING * len(found):
            # Few large postings (a notice's departments or sectors, as a group's passing set is computed): each
            # met alone costs less than their union.
            return BitMap.union(kept, *[candidates & posting for posting in found])
        # Many small ones (a notice's words): united among themselves first, once.
        return kept | (candidates & BitMap.union(*found))

    def exclude(self, candidates: BitMap, notice: _Notice) -> BitMap:
        """The candidates that ask for none of the notice's values (a dimension of exclusions)."""
        found = self.found(notice)
        if not found:
            return candidates
        # One union of the postings, then one difference: cheaper than meeting the postings one by one.
        return candidates - (BitMap.union(*found) if len(found) > 1 else found[0])


# A bound: what a subscription sets (None: not restricted), and the notice's number it is compared with.
_Bound = Callable[[CompiledFilters], Any]
_Measure = Callable[[NoticeView, datetime], Any]


class _BoundDimension:
    """Subscriptions with a lower (or upper) bound on a number of the notice, posted by the bound's value.

    A notice's number fails the bounds above it (below it, for upper bounds): the postings from its threshold on
    (`threshold`, `failing`). A notice without the number fails none (the rule for a missing value or deadline is
    elsewhere).
    """

    __slots__ = ("_bound", "_bounds", "_lower", "_measure", "postings")

    def __init__(self, bound: _Bound, measure: _Measure, *, lower: bool) -> None:
        self._bound, self._measure, self._lower = bound, measure, lower
        self.postings: dict[Any, BitMap] = {}
        self._bounds: list[Any] = []  # the keys of `postings`, sorted

    def add(self, position: int, filters: CompiledFilters) -> None:
        bound = self._bound(filters)
        if bound is None:
            return
        posting = self.postings.get(bound)
        if posting is None:
            self.postings[bound] = posting = BitMap()
            bisect.insort(self._bounds, bound)
        posting.add(position)

    def discard(self, position: int, filters: CompiledFilters) -> None:
        bound = self._bound(filters)
        if bound is None:
            return
        posting = self.postings[bound]
        posting.discard(position)
        if not posting:
            del self.postings[bound]
            del self._bounds[bisect.bisect_left(self._bounds, bound)]

    def copy_sets(self) -> object:
        """As `_Dimension.copy_sets`."""
        originals = self.postings
        self.postings = _copied(self.postings)
        return originals

    def threshold(self, notice: _Notice, now: datetime) -> Any:
        """The bound from which subscriptions fail the notice: None when none does, else the smallest lower bound
        above its number (every bound from it up fails), or the largest upper bound below it (every bound up to it
        fails). Its meaning does not depend on which other bounds exist, so a cached set keyed by it stays exact."""
        number = self._measure(notice.view, now)
        if number is None:
            return None
        bounds = self._bounds
        if self._lower:
            split = bisect.bisect_right(bounds, number)
            return bounds[split] if split < len(bounds) else None
        split = bisect.bisect_left(bounds, number)
        return bounds[split - 1] if split else None

    def fails(self, filters: CompiledFilters, threshold: Any) -> bool:
        """Whether a subscription fails every notice whose threshold is `threshold`."""
        bound = self._bound(filters)
        if bound is None or threshold is None:
            return False
        return bool(bound >= threshold) if self._lower else bool(bound <= threshold)

    def failing(self, threshold: Any) -> list[BitMap]:
        """The postings of the bounds that fail at `threshold`."""
        if threshold is None:
            return []
        bounds = self._bounds
        if self._lower:
            return [self.postings[bound] for bound in bounds[bisect.bisect_left(bounds, threshold) :]]
        return [self.postings[bound] for bound in bounds[: bisect.bisect_right(bounds, threshold)]]


def _microseconds_left(view: NoticeView, now: datetime) -> int | None:
    return None if view.deadline is None else (view.deadline - now) // timedelta(microseconds=1)


def _min_microseconds_left(filters: CompiledFilters) -> int | None:
    # In microseconds, as the deadline is compared: no rounding can make the index and the rule disagree.
    return None if filters.min_days_left is None else filters.min_days_left * _MICROSECONDS_A_DAY


_BOUNDS: dict[str, tuple[_Bound, _Measure, bool]] = {
    "value_min": (lambda f: f.value_min, lambda view, _now: view.value_eur, True),
    "value_max": (lambda f: f.value_max, lambda view, _now: view.value_eur, False),
    "min_days_left": (_min_microseconds_left, _microseconds_left, True),
}


# Dimensions whose notice values are few and recur (a department, a sector set, a kind...) are met in groups: a
# group's passing set for a notice, the AND of its dimensions', is kept by the notice's values and reused by every
# later notice that has the same ones, so that most notices meet each group with one AND of dense sets. The sets are
# kept up to date by `upsert` and `remove`, not rebuilt. At a million subscriptions a set takes up to 128 kB.
_GROUPS = (
    ("department", "region", "country"),
    ("sector",),
    ("kind", "valued", "buyer_category", "procedure_type", "sme_suitable", "reserved"),
)
_BOUNDS_GROUP = 2  # the bounds are met with the last group, whose values are as few
_KEPT_PASSING_SETS = 128  # per group; the least recently used goes first


class _Group:
    """Dimensions met together, their passing set kept per notice values (least recently used dropped)."""

    __slots__ = ("_bounds", "_dimensions", "_kept")

    def __init__(self, dimensions: tuple[_Dimension, ...], bounds: tuple[_BoundDimension, ...]) -> None:
        self._dimensions, self._bounds = dimensions, bounds
        self._kept: OrderedDict[tuple[Any, ...], BitMap] = OrderedDict()

    def passing(self, notice: _Notice, now: datetime, active: BitMap) -> BitMap:
        """Every active subscription that passes all the group's dimensions for this notice. Not to be changed."""
        values = tuple(frozenset(dimension.notice_keys(notice)) for dimension in self._dimensions)
        key = values + tuple(bound.threshold(notice, now) for bound in self._bounds)
        kept = self._kept.get(key)
        if kept is None:
            kept = self._compute(notice, key[len(values) :], active)
            if len(self._kept) >= _KEPT_PASSING_SETS:
                self._kept.popitem(last=False)
            self._kept[key] = kept
        else:
            # Last: the most recently used. Moved, not stored again under this notice's new key, which would then
            # outlive the notice (a tuple and a few frozensets per group, each time): young objects that the next
            # collection of the youngest generation walks. At 100k subscriptions, such a collection, which falls in
            # about one decision in 500 to 1,000, took 0.25 ms at the median with them and 0.07 ms without.
            self._kept.move_to_end(key)
        return kept

    def _compute(self, notice: _Notice, thresholds: tuple[Any, ...], active: BitMap) -> BitMap:
        passing = active.copy()
        for dimension in sorted(self._dimensions, key=lambda d: -d.restricting):
            if dimension.restricting:
                passing = dimension.meet(passing, dimension.found(notice))
        for bound, threshold in zip(self._bounds, thresholds, strict=True):
            for failing in bound.failing(threshold):
                passing -= failing
        return passing

    def copy_sets(self) -> object:
        """As `_Dimension.copy_sets`, for the kept passing sets."""
        originals = self._kept
        self._kept = OrderedDict(_copied(self._kept))
        return originals

    def add(self, position: int, filters: CompiledFilters) -> None:
        """Add a new subscription to the kept sets it passes."""
        if not self._kept:
            return
        asked = [set(dimension.subscription_keys(filters)) for dimension in self._dimensions]
        for key, passing in self._kept.items():
            if self._passes(asked, filters, key):
                passing.add(position)

    def _passes(self, asked: list[set[str]], filters: CompiledFilters, key: tuple[Any, ...]) -> bool:
        """Whether a subscription asking `asked` (per dimension) passes the notices whose key is `key`."""
        width = len(asked)
        for keys, values in zip(asked, key[:width], strict=True):
            if keys and keys.isdisjoint(values):
                return False
        return not any(
            bound.fails(filters, threshold) for bound, threshold in zip(self._bounds, key[width:], strict=True)
        )

    def discard(self, position: int) -> None:
        for passing in self._kept.values():
            passing.discard(position)


class _Phrases:
    """The multi-token terms of the indexed queries, by first token, counted so that removal can forget them."""

    __slots__ = ("_by_first",)

    def __init__(self) -> None:
        self._by_first: dict[str, dict[tuple[str, ...], int]] = {}

    def add(self, terms: Iterable[tuple[str, ...]]) -> None:
        for tokens in terms:
            counts = self._by_first.setdefault(tokens[0], {})
            counts[tokens] = counts.get(tokens, 0) + 1

    def discard(self, terms: Iterable[tuple[str, ...]]) -> None:
        for tokens in terms:
            counts = self._by_first[tokens[0]]
            counts[tokens] -= 1
            if not counts[tokens]:
                del counts[tokens]
                if not counts:
                    del self._by_first[tokens[0]]

    def keyword_keys(self, view: NoticeView) -> frozenset[str]:
        """The keys of the notice's words and of the indexed phrases it contains, for its whole text and, marked,
        for its title alone."""
        title, description = view.title, view.description
        title_keys = set(title.words)
        keys = title_keys | description.words
        by_first = self._by_first
        for text, found in ((title, title_keys), (description, keys)):
            for first in by_first.keys() & text.words:
                for tokens in by_first[first]:
                    if text.contains(tokens):
                        found.add(" ".join(tokens))
        keys |= title_keys
        keys.update([TITLE_MARK + key for key in title_keys])
        return frozenset(keys)


def _phrases(filters: CompiledFilters) -> list[tuple[str, ...]]:
    clauses = _clauses(filters)
    if clauses is None:
        return []
    terms = [term for clause in clauses.required for term in clause] + list(clauses.excluded)
    return [term.tokens for term in terms if len(term.tokens) > 1]


# Roaring bitmaps keep one container per chunk of 65,536 positions; an operation visits every container of its
# operands.
_CHUNK = 1 << 16


# A subscription's position class: whether it asks for CPV codes, and its keyword query's shape (`_position_class`).
_PositionClass = tuple[bool, int]
_NO_QUERY, _ONE_CLAUSE, _OTHER_QUERY = 0, 1, 2


def _position_class(filters: CompiledFilters) -> _PositionClass:
    """Whether the subscription asks for CPV codes; and whether it has no keyword query, a query of one clause
    (words or phrases ORed: most of them), or another one (more clauses, exclusions, or verified)."""
    if filters.query is None:
        return bool(filters.cpv), _NO_QUERY
    clauses = _clauses(filters)
    one_clause = clauses is not None and len(clauses.required) == 1 and not clauses.excluded
    return bool(filters.cpv), _ONE_CLAUSE if one_clause else _OTHER_QUERY


class _Positions:
    """Dense positions handed out by class (`_position_class`), each class filling chunks of its own.

    An operation on two sets visits only the chunks both span. Kept apart, the subscriptions without CPV codes
    (two fifths) are met with the groups' dense passing sets over their own chunks only, and a notice's CPV
    postings, all among the other chunks, span fewer of them; a notice's dozens of keyword postings span the chunks
    of the subscriptions with keywords (a third of them) only; and the postings of second clauses and of
    exclusions, a few subscriptions per word, lie in the chunks of the queries that have them (a tenth of those
    with keywords), one or two, not in every chunk of the keywords. Freed positions are reused within their class.
    (Classes by CPV division as well were tried: more chunks, each partly filled, made every dense operation
    dearer than the shorter CPV unions saved.)"""

    __slots__ = ("_cursor", "_end", "_free", "_limit")

    def __init__(self) -> None:
        self._free: dict[_PositionClass, list[int]] = {}
        self._cursor: dict[_PositionClass, int] = {}
        self._limit: dict[_PositionClass, int] = {}
        self._end = 0  # where the next chunk starts

    def take(self, kind: _PositionClass) -> int:
        free = self._free.get(kind)
        if free:
            return free.pop()
        if self._cursor.get(kind, 0) == self._limit.get(kind, 0):
            self._cursor[kind], self._limit[kind] = self._end, self._end + _CHUNK
            self._end += _CHUNK
        position = self._cursor[kind]
        self._cursor[kind] += 1
        return position

    def give_back(self, position: int, kind: _PositionClass) -> None:
        self._free.setdefault(kind, []).append(position)


class SubscriptionIndex:
    """Every active subscription, indexed by dimension so that matching a notice looks at few of them."""

    def __init__(self) -> None:
        self._entries: list[_Entry | None] = []
        self._positions: dict[str, int] = {}
        self._free = _Positions()
        self._active = BitMap()
        self._to_verify = BitMap()
        self._deliveries: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._dimensions = {name: _Dimension(*keys) for name, keys in _DIMENSIONS.items()}
        self._excluded = _Dimension(_excluded_keys, lambda n: n.keyword_keys)
        self._bounds = {
            name: _BoundDimension(bound, measure, lower=lower) for name, (bound, measure, lower) in _BOUNDS.items()
        }
        grouped = {name for names in _GROUPS for name in names}
        self._groups = [
            _Group(
                tuple(self._dimensions[name] for name in names),
                tuple(self._bounds.values()) if number == _BOUNDS_GROUP else (),
            )
            for number, names in enumerate(_GROUPS)
        ]
        self._cpv = self._dimensions["cpv"]
        self._ungrouped = [
            dimension for name, dimension in self._dimensions.items() if name not in grouped and name != "cpv"
        ]
        self._phrases = _Phrases()

    def __len__(self) -> int:
        """How many subscriptions can match: inactive ones are not kept."""
        return len(self._positions)

    @property
    def verified_share(self) -> float:
        """The share of subscriptions whose keywords the index cannot decide alone (verified when candidates)."""
        return len(self._to_verify) / len(self._positions) if self._positions else 0.0

    def upsert(self, subscription: Subscription) -> None:
        """Add or replace a subscription; an inactive one is removed.

        Raises `KeywordQuerySyntaxError` for a keyword query that does not parse (the index is then unchanged).
        """
        filters = CompiledFilters.of(subscription.filters)
        self.remove(subscription.subscription_id)
        if not subscription.active:
            return
        position = self._free.take(_position_class(filters))
        delivery = _delivery_values(subscription.delivery)
        entry = _Entry(subscription, filters, self._deliveries.setdefault(delivery, delivery))
        if position >= len(self._entries):
            self._entries.extend([None] * (position + 1 - len(self._entries)))
        self._entries[position] = entry
        self._positions[subscription.subscription_id] = position
        self._active.add(position)
        if filters.query is not None and _clauses(filters) is None:
            self._to_verify.add(position)
        for dimension in self._every_dimension():
            dimension.add(position, filters)
        for group in self._groups:
            group.add(position, filters)
        self._phrases.add(_phrases(filters))

    def remove(self, subscription_id: str) -> None:
        """Forget a subscription; unknown ids are ignored (a tombstone may arrive twice)."""
        position = self._positions.pop(subscription_id, None)
        if position is None:
            return
        entry = self._entries[position]
        assert entry is not None
        for dimension in self._every_dimension():
            dimension.discard(position, entry.filters)
        for group in self._groups:
            group.discard(position)
        self._phrases.discard(_phrases(entry.filters))
        self._active.discard(position)
        self._to_verify.discard(position)
        self._entries[position] = None
        self._free.give_back(position, _position_class(entry.filters))

    def compact(self) -> None:
        """Lay every set of the index out anew, each with its parts side by side, once the index is built.

        Built one subscription at a time, a set's parts (its header, its directory of chunks, each chunk's
        container, grown again and again) were allocated as it grew, among everything allocated meanwhile; and
        deciding a notice reads hundreds of sets, each part a cache miss of its own. A copy allocates them side by
        side, at their exact sizes. Every copy is made before any original is freed, so that copies do not fill the
        originals' holes. At a million subscriptions it takes a quarter of a second, and the decision's p99 on
        ordinary pages went from 2.4 to 1.4 ms in one run of `python -m bench.matching`, from 1.9 to 1.6 ms in
        another (10 to 25% less on huge pages, alternating in one process).
        """
        originals = [holder.copy_sets() for holder in (*self._every_dimension(), *self._groups)]
        originals.append((self._active, self._to_verify))
        self._active, self._to_verify = BitMap(self._active), BitMap(self._to_verify)
        del originals  # only now

    def _every_dimension(self) -> list[_Dimension | _BoundDimension]:
        return [*self._dimensions.values(), self._excluded, *self._bounds.values()]

    def match(self, notice: ClassifiedNotice, *, now: datetime) -> list[Hit]:
        """The subscriptions `notice` matches at `now`, in no particular order."""
        return self.match_view(NoticeView.of(notice), now=now)

    def match_view(self, view: NoticeView, *, now: datetime) -> list[Hit]:
        """`match` for a notice already prepared (benchmarks prepare it once)."""
        entries = self._entries
        return [Hit(entries[position], view, now) for position in self.matching_positions(view, now=now)]  # type: ignore[arg-type]

    def matching_positions(self, view: NoticeView, *, now: datetime) -> BitMap:
        """The positions of the subscriptions the notice matches: the whole decision, without building a hit."""
        notice = _Notice(view, self._phrases.keyword_keys(view))
        active = self._active
        # The groups' kept sets, smallest first. They are never changed: each step below makes a new set.
        kept = sorted((group.passing(notice, now, active) for group in self._groups), key=len)
        # CPV codes split the subscriptions in two, each in chunks of its own (`_Positions`): those without codes
        # meet the kept sets over their own chunks only, those asking for one of the notice's prefixes start from
        # the prefixes' postings. Nothing dense is met over every chunk.
        cpv = self._cpv
        candidates = _meet_all(cpv.unrestricted, kept)
        asking = cpv.found(notice)
        if asking:
            candidates |= _meet_all(BitMap.union(*asking) if len(asking) > 1 else asking[0], kept)
        # Most restricting first: each step can only shrink the set, and small sets make the next steps cheap.
        for dimension in sorted(self._ungrouped, key=lambda d: -d.restricting):
            if not candidates:
                return candidates
            if dimension.restricting:
                candidates = dimension.meet(candidates, dimension.found(notice))
        if candidates and self._excluded.restricting:
            candidates = self._excluded.exclude(candidates, notice)
        to_verify = candidates & self._to_verify
        if to_verify:
            entries = self._entries
            rejected = [
                position
                for position in to_verify
                if not verified(entries[position].filters, view, now)  # type: ignore[union-attr]
            ]
            if rejected:
                candidates = candidates - BitMap(rejected)
        return candidates


_Key = TypeVar("_Key")


def _copied(sets: dict[_Key, BitMap]) -> dict[_Key, BitMap]:
    return {key: BitMap(members) for key, members in sets.items()}


def _meet_all(first: BitMap, others: list[BitMap]) -> BitMap:
    """A new set: `first` and every one of `others`."""
    met = first & others[0]
    for other in others[1:]:
        if not met:
            break
        met &= other
    return met


def brute_force_match(subscriptions: Iterable[Subscription], notice: ClassifiedNotice, *, now: datetime) -> list[Hit]:
    """Reference implementation: every subscription checked in turn. Same result as `SubscriptionIndex.match`."""
    view = NoticeView.of(notice)
    hits = []
    for subscription in subscriptions:
        if not subscription.active:
            continue
        filters = CompiledFilters.of(subscription.filters)
        if reasons(filters, view, now) is not None:
            hits.append(Hit(_Entry(subscription, filters, _delivery_values(subscription.delivery)), view, now))
    hits.sort(key=lambda hit: hit.subscription_id)
    return hits
