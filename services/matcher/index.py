"""Which subscriptions a classified notice matches, without scanning them all (DESIGN.md §5).

What matches is defined once, in `schemas.filtering.rules`; this module only decides which subscriptions to ask.

Each subscription gets a dense integer id. Every dimension that set membership decides exactly (kind, CPV
prefix, sector, department, region, country, buyer category, procedure type, buyer, SME and reserved flags)
keeps, per value, a compressed bitmap (roaring) of the subscriptions asking for it, plus the bitmap of the
subscriptions that restrict the dimension at all. For a notice, a subscription survives a dimension when it does
not restrict it or asks for one of the notice's values:

    candidates = (candidates - restricting) | (candidates & (postings[v1] | postings[v2] | ...))

Dimensions are applied most selective first, so the set shrinks early. Keywords are a dimension too, on
necessary tokens (`query.required_tokens`: a notice can only match if it has one of them); a query that is one
word or words ORed is decided exactly by its own dimension (of all words, or of title words for `title_only`). The
survivors that have another query, a value range or a deadline criterion are then verified exactly
(`rules.verified`); the rest already match. Reasons are computed only when a hit is read.

Updates are incremental: `upsert` and `remove` touch the bitmaps of one subscription; ids are reused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pyroaring import BitMap

from schemas.alert import MatchReason
from schemas.filtering.query import AnyOf, Query, Term, required_tokens
from schemas.filtering.rules import CompiledFilters, NoticeView, reasons, verified
from schemas.notice import ClassifiedNotice
from schemas.subscription import DeliverySettings, Subscription


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


# Above this many postings for one notice, they are united before meeting the candidates.
_UNION_FIRST = 4

# Delivery settings are kept as a tuple of their values, shared by the subscriptions that have the same ones: a
# pydantic model per subscription would cost more than the rest of the entry.
_DELIVERY_FIELDS = tuple(DeliverySettings.model_fields)


def _delivery_values(delivery: DeliverySettings) -> tuple[Any, ...]:
    return tuple(getattr(delivery, name) for name in _DELIVERY_FIELDS)


# A dimension: the keys a subscription asks for (empty: not restricted) and the keys a notice has.
_SubscriptionKeys = Callable[[CompiledFilters], Iterable[str]]
_NoticeKeys = Callable[[NoticeView], Iterable[str]]


def _flag_keys(flag: str | None) -> tuple[str, ...]:
    return () if flag is None else (flag,)


def exact_keyword_tokens(query: Query | None) -> frozenset[str] | None:
    """The tokens of a query that is one word or words ORed: a notice matches it exactly when it has one of them,
    so the index decides it without verification. None for any other query."""
    terms = query.children if isinstance(query, AnyOf) else (query,)
    if all(isinstance(term, Term) and len(term.tokens) == 1 for term in terms):
        return frozenset(term.tokens[0] for term in terms if isinstance(term, Term))
    return None


def _keyword_keys(filters: CompiledFilters) -> Iterable[str]:
    """Necessary tokens of the queries the index cannot decide alone (phrases, AND, exclusions)."""
    if filters.query is None or exact_keyword_tokens(filters.query) is not None:
        return ()
    return required_tokens(filters.query) or ()  # None: no necessary token, verification decides


def _exact_keyword_keys(filters: CompiledFilters, *, title_only: bool) -> Iterable[str]:
    if filters.title_only is not title_only:
        return ()
    return exact_keyword_tokens(filters.query) or ()


_DIMENSIONS: dict[str, tuple[_SubscriptionKeys, _NoticeKeys]] = {
    "kind": (lambda f: f.kinds, lambda v: (v.kind,)),
    "cpv": (lambda f: {prefix for _code, prefix in f.cpv}, lambda v: v.cpv_prefixes),
    "sector": (lambda f: f.sectors, lambda v: v.sectors),
    "department": (lambda f: f.departments, lambda v: v.departments),
    "region": (lambda f: f.regions, lambda v: v.regions),
    "country": (lambda f: f.countries, lambda v: v.countries),
    "buyer_category": (lambda f: f.buyer_categories, lambda v: _flag_keys(v.buyer_category)),
    "procedure_type": (lambda f: f.procedure_types, lambda v: _flag_keys(v.procedure)),
    "buyer": (lambda f: {key for _value, key in f.buyers}, lambda v: v.buyer_keys),
    "sme_suitable": (lambda f: _flag_keys(f.sme_suitable), lambda v: _flag_keys(v.sme_suitable)),
    "reserved": (lambda f: _flag_keys(f.reserved), lambda v: (v.reserved,)),
    "keyword": (_keyword_keys, lambda v: v.words),
    "keyword_exact": (lambda f: _exact_keyword_keys(f, title_only=False), lambda v: v.words),
    "keyword_title_exact": (lambda f: _exact_keyword_keys(f, title_only=True), lambda v: v.title.words),
}


class _Dimension:
    __slots__ = ("notice_keys", "postings", "restricting", "subscription_keys")

    def __init__(self, subscription_keys: _SubscriptionKeys, notice_keys: _NoticeKeys) -> None:
        self.subscription_keys = subscription_keys
        self.notice_keys = notice_keys
        self.postings: dict[str, BitMap] = {}
        self.restricting = BitMap()

    def add(self, position: int, filters: CompiledFilters) -> None:
        keys = set(self.subscription_keys(filters))
        if keys:
            self.restricting.add(position)
        for key in keys:
            posting = self.postings.get(key)
            if posting is None:
                self.postings[key] = posting = BitMap()
            posting.add(position)

    def discard(self, position: int, filters: CompiledFilters) -> None:
        self.restricting.discard(position)
        for key in set(self.subscription_keys(filters)):
            posting = self.postings.get(key)
            if posting is not None:
                posting.discard(position)
                if not posting:
                    del self.postings[key]

    def narrow(self, candidates: BitMap, view: NoticeView) -> BitMap:
        """The candidates that do not restrict this dimension or ask for one of the notice's values."""
        kept = candidates - self.restricting
        postings = self.postings
        found = [posting for key in self.notice_keys(view) if (posting := postings.get(key)) is not None]
        if len(found) > _UNION_FIRST:
            # Many small postings (the words of a notice): one union in C, then one intersection.
            kept |= candidates & BitMap.union(*found)
        else:
            for posting in found:
                kept |= candidates & posting
        return kept


class SubscriptionIndex:
    """Every active subscription, indexed by dimension so that matching a notice looks at few of them."""

    def __init__(self) -> None:
        self._entries: list[_Entry | None] = []
        self._positions: dict[str, int] = {}
        self._free: list[int] = []
        self._active = BitMap()
        self._to_verify = BitMap()
        self._deliveries: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._dimensions = {name: _Dimension(*keys) for name, keys in _DIMENSIONS.items()}

    def __len__(self) -> int:
        """How many subscriptions can match: inactive ones are not kept."""
        return len(self._positions)

    def upsert(self, subscription: Subscription) -> None:
        """Add or replace a subscription; an inactive one is removed.

        Raises `KeywordQuerySyntaxError` for a keyword query that does not parse (the index is then unchanged).
        """
        filters = CompiledFilters.of(subscription.filters)
        self.remove(subscription.subscription_id)
        if not subscription.active:
            return
        position = self._free.pop() if self._free else len(self._entries)
        delivery = _delivery_values(subscription.delivery)
        entry = _Entry(subscription, filters, self._deliveries.setdefault(delivery, delivery))
        if position == len(self._entries):
            self._entries.append(entry)
        else:
            self._entries[position] = entry
        self._positions[subscription.subscription_id] = position
        self._active.add(position)
        if _needs_verification(filters):
            self._to_verify.add(position)
        for dimension in self._dimensions.values():
            dimension.add(position, filters)

    def remove(self, subscription_id: str) -> None:
        """Forget a subscription; unknown ids are ignored (a tombstone may arrive twice)."""
        position = self._positions.pop(subscription_id, None)
        if position is None:
            return
        entry = self._entries[position]
        assert entry is not None
        for dimension in self._dimensions.values():
            dimension.discard(position, entry.filters)
        self._active.discard(position)
        self._to_verify.discard(position)
        self._entries[position] = None
        self._free.append(position)

    def match(self, notice: ClassifiedNotice, *, now: datetime) -> list[Hit]:
        """The subscriptions `notice` matches at `now`, in no particular order."""
        return self.match_view(NoticeView.of(notice), now=now)

    def match_view(self, view: NoticeView, *, now: datetime) -> list[Hit]:
        """`match` for a notice already prepared (benchmarks prepare it once)."""
        entries = self._entries
        return [Hit(entries[position], view, now) for position in self.matching_positions(view, now=now)]  # type: ignore[arg-type]

    def matching_positions(self, view: NoticeView, *, now: datetime) -> BitMap:
        """The positions of the subscriptions the notice matches: the whole decision, without building a hit."""
        candidates = self._active
        # Most restricting first: each step can only shrink the set, and small sets make the next steps cheap.
        for dimension in sorted(self._dimensions.values(), key=lambda d: -len(d.restricting)):
            if not candidates:
                return candidates
            if dimension.restricting:
                candidates = dimension.narrow(candidates, view)
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


def _needs_verification(filters: CompiledFilters) -> bool:
    """Whether set membership leaves something to check: a value range, a deadline, or a query that is more than
    words ORed."""
    return (
        filters.value_min is not None
        or filters.value_max is not None
        or filters.min_days_left is not None
        or (filters.query is not None and exact_keyword_tokens(filters.query) is None)
    )


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
