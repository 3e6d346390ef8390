"""Which subscriptions a classified notice matches (DESIGN.md §5).

Semantics, shared by the index and the brute-force reference:
- an inactive subscription never matches;
- every non-empty criterion of a subscription's filters must hold; inside a criterion any listed value will do;
- kinds, sectors, departments, regions, countries: the notice has one of the listed values;
- cpv: a subscription code covers every code that starts with its significant prefix, the code without its
  trailing zeros but at least 2 digits (45000000 -> 45, 55300000 -> 553, 45233140 -> 4523314); the notice's
  main, additional and lot codes all count;
- keywords: over title and description, or the title alone when `title_only`, after `text.tokens`
  normalisation; a multi-word term is a phrase (consecutive tokens, never spanning title and description);
  `any`: one term present, `all`: every term present, `none`: no term present. A term made only of stop words
  can never be found, so it never satisfies `any` or `all` and never excludes through `none`;
- value_min / value_max: inclusive bounds on the notice's estimated value (amounts compared as published:
  filters carry no currency); a notice without an estimated value fails a value criterion;
- a subscription with no criterion at all matches every notice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from schemas.notice import ClassifiedNotice, Money, NoticeKind
from schemas.subscription import KeywordQuery, Subscription, SubscriptionFilters
from services.matcher.text import phrase_tokens, tokens

_KIND_LABELS = {
    NoticeKind.PLANNING: "programmation",
    NoticeKind.COMPETITION: "appel d'offres",
    NoticeKind.RESULT: "attribution",
}
_EVERYTHING = "tous les avis (aucun filtre)"


@dataclass(frozen=True)
class Hit:
    """A subscription a notice matched, and why (one line per criterion, in a fixed order)."""

    subscription: Subscription
    reasons: tuple[str, ...]


class SubscriptionIndex:
    """Every active subscription, indexed so that a notice is matched without scanning them all.

    Each dimension (kind, CPV prefix, sector, geography, keyword) maps a key to the subscriptions that ask
    for it, plus the set of subscriptions that do not restrict that dimension. A notice's candidates are the
    intersection over dimensions, smallest first; only candidates are verified against the full criteria.
    """

    def __init__(self) -> None:
        self._subscriptions: dict[str, Subscription] = {}
        self._postings: dict[str, dict[str, set[str]]] = {d.name: {} for d in _DIMENSIONS}
        self._unconstrained: dict[str, set[str]] = {d.name: set() for d in _DIMENSIONS}

    def __len__(self) -> int:
        """How many subscriptions can match: inactive ones are not kept."""
        return len(self._subscriptions)

    def upsert(self, subscription: Subscription) -> None:
        """Add or replace a subscription; an inactive one is removed."""
        self.remove(subscription.subscription_id)
        if not subscription.active:
            return
        sid = subscription.subscription_id
        self._subscriptions[sid] = subscription
        for dimension in _DIMENSIONS:
            keys = dimension.subscription_keys(subscription.filters)
            if keys is None:
                self._unconstrained[dimension.name].add(sid)
            for key in keys or ():
                self._postings[dimension.name].setdefault(key, set()).add(sid)

    def remove(self, subscription_id: str) -> None:
        """Forget a subscription; unknown ids are ignored (a tombstone may arrive twice)."""
        subscription = self._subscriptions.pop(subscription_id, None)
        if subscription is None:
            return
        for dimension in _DIMENSIONS:
            self._unconstrained[dimension.name].discard(subscription_id)
            postings = self._postings[dimension.name]
            for key in dimension.subscription_keys(subscription.filters) or ():
                ids = postings.get(key)
                if ids is not None:
                    ids.discard(subscription_id)
                    if not ids:
                        del postings[key]

    def match(self, notice: ClassifiedNotice) -> list[Hit]:
        """The subscriptions `notice` matches, ordered by subscription id."""
        view = _NoticeView.of(notice)
        hits = []
        for sid in sorted(self._candidates(view)):
            subscription = self._subscriptions[sid]
            reasons = _reasons(subscription, view)
            if reasons is not None:
                hits.append(Hit(subscription, reasons))
        return hits

    def _candidates(self, view: _NoticeView) -> set[str]:
        per_dimension: list[list[set[str]]] = []
        for dimension in _DIMENSIONS:
            postings = self._postings[dimension.name]
            sets = [postings[key] for key in dimension.notice_keys(view) if key in postings]
            sets.append(self._unconstrained[dimension.name])
            per_dimension.append(sets)
        per_dimension.sort(key=lambda sets: sum(len(s) for s in sets))
        smallest, *others = per_dimension
        candidates: set[str] = set().union(*smallest)
        for sets in others:
            if not candidates:
                break
            candidates = {sid for sid in candidates if any(sid in s for s in sets)}
        return candidates


def brute_force_match(subscriptions: Iterable[Subscription], notice: ClassifiedNotice) -> list[Hit]:
    """Reference implementation: every subscription checked in turn. Same result as `SubscriptionIndex.match`."""
    view = _NoticeView.of(notice)
    hits = []
    for subscription in sorted(subscriptions, key=lambda s: s.subscription_id):
        reasons = _reasons(subscription, view)
        if reasons is not None:
            hits.append(Hit(subscription, reasons))
    return hits


@dataclass(frozen=True)
class _Text:
    """One field's tokens, with where each token occurs, to find phrases quickly."""

    tokens: tuple[str, ...]
    positions: Mapping[str, tuple[int, ...]]

    @classmethod
    def of(cls, text: str | None) -> _Text:
        words = tuple(tokens(text or ""))
        positions: dict[str, list[int]] = {}
        for i, word in enumerate(words):
            positions.setdefault(word, []).append(i)
        return cls(words, {word: tuple(at) for word, at in positions.items()})

    def contains(self, phrase: tuple[str, ...]) -> bool:
        if not phrase:
            return False
        size = len(phrase)
        return any(self.tokens[i : i + size] == phrase for i in self.positions.get(phrase[0], ()))


@dataclass(frozen=True)
class _NoticeView:
    """What matching reads from a notice, computed once per notice."""

    kind: NoticeKind
    cpv: tuple[str, ...]
    cpv_prefixes: frozenset[str]
    sectors: frozenset[str]
    departments: frozenset[str]
    regions: frozenset[str]
    countries: frozenset[str]
    title: _Text
    description: _Text
    words: frozenset[str]
    value: Money | None

    @classmethod
    def of(cls, notice: ClassifiedNotice) -> _NoticeView:
        # Tolerate the check-digit form (45000000-7) should a source let it through.
        cpv = tuple(dict.fromkeys(code.split("-")[0].strip() for code in notice.all_cpv()))
        title, description = _Text.of(notice.title), _Text.of(notice.description)
        return cls(
            kind=notice.kind,
            cpv=cpv,
            cpv_prefixes=frozenset(code[:n] for code in cpv for n in range(2, len(code) + 1)),
            sectors=frozenset(notice.sectors),
            departments=frozenset(notice.departments),
            regions=frozenset(notice.regions),
            countries=frozenset(notice.countries),
            title=title,
            description=description,
            words=frozenset(title.tokens) | frozenset(description.tokens),
            value=notice.estimated_value,
        )

    def texts(self, title_only: bool) -> tuple[_Text, ...]:
        return (self.title,) if title_only else (self.title, self.description)


# --- Criteria: the one definition of each predicate. None means "fails", [] means "not restricted". ---


def _kind_reasons(filters: SubscriptionFilters, view: _NoticeView) -> list[str] | None:
    if not filters.kinds:
        return []
    return [f"type d'avis : {_KIND_LABELS[view.kind]}"] if view.kind in filters.kinds else None


def _cpv_prefix(code: str) -> str:
    significant = code.rstrip("0")
    return significant if len(significant) >= 2 else code[:2]


def _cpv_reasons(filters: SubscriptionFilters, view: _NoticeView) -> list[str] | None:
    if not filters.cpv:
        return []
    for code in filters.cpv:
        prefix = _cpv_prefix(code)
        for notice_code in view.cpv:
            if notice_code.startswith(prefix):
                return [f"CPV {code}" if code == notice_code else f"CPV {code} (avis {notice_code})"]
    return None


def _one_of(label: str, wanted: list[str], present: frozenset[str]) -> list[str] | None:
    if not wanted:
        return []
    found = [value for value in wanted if value in present]
    return [f"{label} {', '.join(found)}"] if found else None


def _sector_reasons(filters: SubscriptionFilters, view: _NoticeView) -> list[str] | None:
    return _one_of("secteur", filters.sectors, view.sectors)


def _department_reasons(filters: SubscriptionFilters, view: _NoticeView) -> list[str] | None:
    return _one_of("département", filters.departments, view.departments)


def _region_reasons(filters: SubscriptionFilters, view: _NoticeView) -> list[str] | None:
    return _one_of("région", filters.regions, view.regions)


def _country_reasons(filters: SubscriptionFilters, view: _NoticeView) -> list[str] | None:
    return _one_of("pays", filters.countries, view.countries)


def _keyword_reasons(filters: SubscriptionFilters, view: _NoticeView) -> list[str] | None:
    query = filters.keywords
    if query is None or query.is_empty():
        return []
    texts = view.texts(query.title_only)

    def found(term: str) -> bool:
        phrase = phrase_tokens(term)
        return any(text.contains(phrase) for text in texts)

    where = " (titre)" if query.title_only else ""
    reasons = []
    if query.any:
        matched = [term for term in query.any if found(term)]
        if not matched:
            return None
        reasons += [f"mot-clé « {term} »{where}" for term in matched]
    if query.all:
        if not all(found(term) for term in query.all):
            return None
        reasons += [f"mot-clé « {term} »{where}" for term in query.all]
    if query.none:
        if any(found(term) for term in query.none):
            return None
        reasons.append(f"sans {', '.join(f'« {term} »' for term in query.none)}{where}")
    return reasons


def _amount(value: Decimal) -> str:
    text = f"{value:,.2f}".replace(",", " ")
    return text.removesuffix(".00")


def _value_reasons(filters: SubscriptionFilters, view: _NoticeView) -> list[str] | None:
    low, high = filters.value_min, filters.value_max
    if low is None and high is None:
        return []
    if view.value is None:
        return None
    amount = view.value.amount
    if (low is not None and amount < low) or (high is not None and amount > high):
        return None
    if low is not None and high is not None:
        bounds = f"entre {_amount(low)} et {_amount(high)}"
    elif low is not None:
        bounds = f"au moins {_amount(low)}"
    else:
        bounds = f"au plus {_amount(high or Decimal(0))}"
    return [f"valeur estimée {_amount(amount)} {view.value.currency} ({bounds})"]


_CRITERIA: tuple[Callable[[SubscriptionFilters, _NoticeView], list[str] | None], ...] = (
    _kind_reasons,
    _cpv_reasons,
    _sector_reasons,
    _department_reasons,
    _region_reasons,
    _country_reasons,
    _keyword_reasons,
    _value_reasons,
)


def _reasons(subscription: Subscription, view: _NoticeView) -> tuple[str, ...] | None:
    """Why `subscription` matches the notice, or None when it does not."""
    if not subscription.active:
        return None
    reasons: list[str] = []
    for criterion in _CRITERIA:
        found = criterion(subscription.filters, view)
        if found is None:
            return None
        reasons += found
    return tuple(reasons) or (_EVERYTHING,)


# --- Dimensions: how the index narrows candidates. Keys are necessary conditions, never sufficient ones. ---


@dataclass(frozen=True)
class _Dimension:
    name: str
    # None: the subscription does not restrict this dimension; (): it can never match on it.
    subscription_keys: Callable[[SubscriptionFilters], tuple[str, ...] | None]
    notice_keys: Callable[[_NoticeView], Iterable[str]]


def _keys(values: Iterable[str]) -> tuple[str, ...] | None:
    return tuple(values) or None


def _keyword_any_keys(filters: SubscriptionFilters) -> tuple[str, ...] | None:
    query = filters.keywords
    if query is None or not query.any:
        return None
    # A phrase can only be present where its first token is.
    return tuple(dict.fromkeys(phrase[0] for phrase in map(phrase_tokens, query.any) if phrase))


def _keyword_all_keys(filters: SubscriptionFilters) -> tuple[str, ...] | None:
    query: KeywordQuery | None = filters.keywords
    if query is None or not query.all:
        return None
    phrases = [phrase_tokens(term) for term in query.all]
    if not all(phrases):
        return ()
    # Every term is required, so any single one is a necessary condition: the first will do.
    return (phrases[0][0],)


_DIMENSIONS = (
    _Dimension("kind", lambda f: _keys(f.kinds), lambda v: (v.kind,)),
    _Dimension("cpv", lambda f: _keys(_cpv_prefix(code) for code in f.cpv), lambda v: v.cpv_prefixes),
    _Dimension("sector", lambda f: _keys(f.sectors), lambda v: v.sectors),
    _Dimension("department", lambda f: _keys(f.departments), lambda v: v.departments),
    _Dimension("region", lambda f: _keys(f.regions), lambda v: v.regions),
    _Dimension("country", lambda f: _keys(f.countries), lambda v: v.countries),
    _Dimension("keyword_any", _keyword_any_keys, lambda v: v.words),
    _Dimension("keyword_all", _keyword_all_keys, lambda v: v.words),
)
